from urllib.parse import quote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from bot.gitlab.scrub import scrub_text, scrub_url


def test_user_and_password_are_masked():
    assert scrub_url("https://u:p@h.example/x.git") == "https://*****:*****@h.example/x.git"


def test_token_only_userinfo_is_masked():
    assert scrub_url("https://glpat-abcdefgh1234@h.example/x") == "https://*****@h.example/x"


def test_url_without_userinfo_is_unchanged():
    assert scrub_url("https://h.example/x.git") == "https://h.example/x.git"
    assert scrub_url(None) is None


def test_an_already_scrubbed_url_stays_scrubbed():
    once = scrub_url("https://*****:*****@h.example/x.git")
    assert once == "https://*****:*****@h.example/x.git"


def test_urls_inside_error_text_are_scrubbed():
    error = (
        "fatal: unable to access 'https://bot:hunter2@github.example.org/a/b.git/': "
        "The requested URL returned error: 403"
    )
    scrubbed = scrub_text(error)
    assert "hunter2" not in scrubbed
    assert "https://*****:*****@github.example.org/a/b.git/" in scrubbed


def test_gitlab_tokens_in_text_are_masked():
    assert "glpat-" not in scrub_text("used token glpat-AbCdEf123456789xyz for push")


def test_userinfo_containing_at_signs_is_fully_masked():
    scrubbed = scrub_url("https://user@corp:p@ss@h.example/x")
    assert "corp" not in scrubbed and "ss@h" not in scrubbed
    assert scrubbed.endswith("@h.example/x")


# Raw userinfo as RFC 3986 allows it (unreserved, sub-delims; ":" only in the password);
# anything else is generated percent-encoded, as a real URL would carry it.
_RFC_USERINFO = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;="
_any_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=30)
_raw_user = st.text(alphabet=_RFC_USERINFO, min_size=1, max_size=30)
_raw_password = st.text(alphabet=_RFC_USERINFO + ":", min_size=0, max_size=30)


@given(
    scheme=st.sampled_from(["http", "https", "ssh", "git"]),
    raw_user=_raw_user,
    raw_password=st.one_of(st.none(), _raw_password),
    any_user=_any_text,
    any_password=st.one_of(st.none(), _any_text),
    host=st.from_regex(r"[a-z]{1,10}\.example\.(com|org)", fullmatch=True),
    path=st.from_regex(r"(/[a-z0-9]{1,8}){0,3}(\.git)?", fullmatch=True),
    encode=st.booleans(),
)
def test_no_url_keeps_its_userinfo_after_scrubbing(
    scheme, raw_user, raw_password, any_user, any_password, host, path, encode
):
    user, password = raw_user, raw_password
    if encode:
        user = quote(any_user, safe="")
        password = quote(any_password, safe="") if any_password is not None else None
    userinfo = user if password is None else f"{user}:{password}"
    url = f"{scheme}://{userinfo}@{host}{path}"
    scrubbed = scrub_url(url)
    assert scrubbed is not None
    # Userinfo made only of stars and colons looks like the mask itself: the exact
    # components below still prove it was replaced.
    telling = bool(userinfo.strip("*:"))
    assert not telling or f"{userinfo}@" not in scrubbed
    parts = urlsplit(scrubbed)
    assert parts.username == "*****"  # every generated user name is non-empty
    assert parts.password == (None if password is None else "*****")
    assert scrubbed.endswith(f"@{host}{path}")
    # Scrubbing free text that contains the URL masks it as well.
    assert not telling or f"{userinfo}@" not in scrub_text(f"error pushing to {url}: denied")


@given(st.text(max_size=200))
def test_scrubbing_never_raises(text):
    scrub_url(text)
    scrub_text(text)


def test_a_token_in_a_query_string_or_fragment_is_masked():
    scrubbed = scrub_url("https://h.example.org/x.git?access_token=abc123secret&ref=main#frag")
    assert scrubbed == "https://h.example.org/x.git?access_token=*****&ref=*****#*****"
    text = "push to https://h.example.org/x.git?private_token=abc123secret failed"
    assert scrub_text(text) == "push to https://h.example.org/x.git?private_token=***** failed"
    assert scrub_text("denied for ghp_abcdefghijklmnop") == "denied for *****"
