"""Whether a server may run without accounts, judged by the address it binds.

Before the first account exists the chat and the admin console act as the local
administrator, for whoever connects. That is the single-user app on 127.0.0.1; on any other
address it would hand administrator rights to the network, so `kb serve` refuses unless told
`--insecure-no-auth`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import cast

logger = logging.getLogger(__name__)

FIRST_ADMIN_COMMAND = "kb admin create NAME"


class ExposedWithoutAccounts(RuntimeError):
    pass


def is_loopback(host: str) -> bool:
    """True when `host` is reachable only from this machine; an empty host means every interface."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        # A name: loopback only if every address it resolves to is.
        # IP socket addresses start with the address text; typeshed's (int, bytes) form is only
        # for a Python built with --disable-ipv6.
        addresses = {cast(str, info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def open_without_accounts(host: str, has_accounts: bool, insecure_no_auth: bool) -> bool:
    """Whether anonymous callers act as the local administrator while no account exists.

    Raises ExposedWithoutAccounts for a non-loopback `host` without accounts and without
    `insecure_no_auth`; its message says how to create the first administrator."""
    if is_loopback(host):
        return True
    if has_accounts:
        return False
    if insecure_no_auth:
        logger.warning(insecure_warning(host))
        return True
    raise ExposedWithoutAccounts(
        f"refusing to serve on {host or 'every interface'} without accounts: anyone who can reach it would be "
        f"administrator. Create the first administrator with `{FIRST_ADMIN_COMMAND}` (it prompts for a password; "
        f"in Docker: `docker compose run --rm app {FIRST_ADMIN_COMMAND}`), then start again; or serve on 127.0.0.1; "
        "or, knowing that everyone on the network gets administrator rights until an account exists, pass --insecure-no-auth."
    )


def insecure_warning(host: str) -> str:
    bar = "!" * 78
    return (
        f"{bar}\nINSECURE: serving on {host or 'every interface'} with --insecure-no-auth and no account. Until the "
        "first account exists, ANYONE who can reach this address is administrator of the chat, the admin console "
        f"and every document. Create one now with `{FIRST_ADMIN_COMMAND}`: login switches on at once, without a "
        f"restart.\n{bar}"
    )
