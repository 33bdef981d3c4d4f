"""The start-up check of the OCI credentials, run in a forked child so the SDK never stays loaded.

A bad key, config file or profile is found before supervisord starts and reported as one line
(`CredentialsError`), like every other start-up problem.
"""

from __future__ import annotations

import multiprocessing
import sys
from multiprocessing.connection import Connection

from app.credentials import CredentialsError, credentials_problem
from app.oci_config import AuthMode, ResolvedAuth
from app.settings import Settings


def check_credentials(settings: Settings) -> None:
    """Load the credentials once, in a short-lived forked child that sends back the problem found.

    Loading them here would keep the OCI SDK (~28 MiB) resident in this process, which only
    waits on supervisord for the stack's whole life. The child answers through a pipe with
    `credentials_problem`'s result (None or one line), never through its output.
    """
    auth = settings.proxy.auth
    if auth.mode in (AuthMode.INSTANCE_PRINCIPAL, AuthMode.NONE):
        return
    context = multiprocessing.get_context("fork")  # no threads run yet
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_report_credentials, args=(auth, sender), daemon=True)
    sys.stdout.flush()  # the child flushes inherited buffers on exit: nothing may be printed twice
    sys.stderr.flush()
    child.start()
    sender.close()
    try:
        problem = receiver.recv()
    except EOFError:
        child.join()
        problem = (
            f"OCI_AUTH: the credentials check stopped unexpectedly (exit code {child.exitcode})"
        )
    finally:
        receiver.close()
    child.join()
    if problem is not None:
        raise CredentialsError(problem)


def _report_credentials(auth: ResolvedAuth, sender: Connection) -> None:
    """Runs in the child: send `credentials_problem(auth)` to the parent."""
    with sender:
        sender.send(credentials_problem(auth))
