"""Before an instance starts: unpack its account's session bundle into a work dir that holds no login yet.

One bad bundle costs one instance its login, not the whole proxy its start; the reason is kept for the
login status (`errors`), where a user looks for why an instance is logged out.
"""

from __future__ import annotations

import logging

from ..upstream.pool import Instance
from .bundles import BundleError, account_bundle, import_bundle

log = logging.getLogger("lingma_proxy.login")


class BundleImporter:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}  # instance name → why its bundle was rejected

    def prepare_work_dir(self, inst: Instance) -> None:
        account = inst.account
        if account is None or (inst.work_dir / "cache" / "user").exists():
            return
        try:
            data = account_bundle(account)
            if data is None:
                return
            files = import_bundle(data, inst.work_dir, account.name)
        except BundleError as err:
            self.errors[inst.name] = str(err)
            log.error("%s; instance %s starts without it", err, inst.name)
            return
        log.info("instance %s: imported the session bundle of account %r (%d files)", inst.name, account.name, files)
