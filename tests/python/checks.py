"""Shared by the gRPC test clients: one line per check ("ok: ..." or
"FAIL: ..." on stderr), a count of the failures, and a call that must fail
with a given status code (each refused call's status printed as
"status: CODE: message")."""
import sys

import grpc

failures = 0


def check(what, cond, detail=""):
    global failures
    if cond:
        print(f"ok: {what}")
    else:
        print(f"FAIL: {what} {detail}", file=sys.stderr)
        failures += 1


def expect_code(what, code, fn, req, needle=None, timeout=15):
    """fn(req, timeout=...) must raise code; needle, if given, must be in
    the message. Returns the error (None if the call succeeded)."""
    try:
        fn(req, timeout=timeout)
    except grpc.RpcError as e:
        print(f"status: {e.code().name}: {e.details()}")
        check(f"{what} -> {code.name}", e.code() == code,
              f"(got {e.code().name}: {e.details()})")
        if needle is not None:
            check(f"{what}: the message says '{needle}'", needle in (e.details() or ""),
                  f"({e.details()})")
        return e
    check(f"{what} -> {code.name}", False, "(call succeeded)")
    return None
