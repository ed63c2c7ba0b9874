"""Re-encrypt every stored secret with the first key of MIRRORBOT_SECRET_KEY."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.crypto import TokenCipher
from bot.store.db import transaction
from bot.store.models import ApprovalRequest, DeviceLogin, LinkedAccount, RotationRow


async def rotate_secrets(sessions: async_sessionmaker[AsyncSession], cipher: TokenCipher) -> int:
    """Returns how many values were re-encrypted. After it, older keys can be removed."""
    count = 0
    async with transaction(sessions) as session:
        for account in (await session.scalars(select(LinkedAccount))).all():
            account.token_ciphertext = cipher.rotate(account.token_ciphertext)
            count += 1
            if account.refresh_token_ciphertext is not None:  # an OAuth link's
                account.refresh_token_ciphertext = cipher.rotate(account.refresh_token_ciphertext)
                count += 1
        for request in (
            await session.scalars(
                select(ApprovalRequest).where(ApprovalRequest.params_ciphertext.is_not(None))
            )
        ).all():
            assert request.params_ciphertext is not None
            request.params_ciphertext = cipher.rotate(request.params_ciphertext)
            count += 1
        for login in (await session.scalars(select(DeviceLogin))).all():
            login.device_code_ciphertext = cipher.rotate(login.device_code_ciphertext)
            if login.response_url_ciphertext is not None:
                login.response_url_ciphertext = cipher.rotate(login.response_url_ciphertext)
        for rotation in (
            await session.scalars(
                select(RotationRow).where(RotationRow.credentials_ciphertext.is_not(None))
            )
        ).all():
            assert rotation.credentials_ciphertext is not None
            rotation.credentials_ciphertext = cipher.rotate(rotation.credentials_ciphertext)
            count += 1
    return count
