"""The demo's API tokens, PII key and link key, kept in its data directory across restarts."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from termwatch.settings import ApiToken


@dataclass
class DemoSecrets:
    """What must stay the same across restarts on one data directory."""

    agent: str
    engineer: str
    admin: str
    pii_key: str
    runs: int = 0
    link_key: str = ""  # absent from the files of older versions: made on the next load

    @classmethod
    def load_or_create(cls, path: Path) -> DemoSecrets:
        """Read ``path``, or create it (mode 0600) with new random values.

        Raises ValueError naming the file when it exists but is not what this writes.
        """
        if path.exists():
            try:
                loaded = cls(**json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}: not a termwatch demo file ({exc}); delete it") from None
            if not loaded.link_key:
                loaded.link_key = secrets.token_hex(32)
                loaded.save(path)
            return loaded
        made = cls(
            agent=f"agent-{secrets.token_urlsafe(12)}",
            engineer=f"engineer-{secrets.token_urlsafe(12)}",
            admin=f"admin-{secrets.token_urlsafe(12)}",
            pii_key=secrets.token_urlsafe(32),
            link_key=secrets.token_hex(32),
        )
        made.save(path)
        return made

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)

    def tokens(self) -> tuple[ApiToken, ...]:
        return (
            ApiToken("agent", self.agent),
            ApiToken("engineer", self.engineer),
            ApiToken("admin", self.admin),
        )
