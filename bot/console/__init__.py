"""`mirrorbot console`: the /mirror commands in a terminal, rendered from the same results
and the same Block Kit as in Slack; buttons become lettered choices."""
