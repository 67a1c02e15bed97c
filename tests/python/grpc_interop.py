#!/usr/bin/python3
"""Interop test of migrationd's control API with the stock Python gRPC
client (Debian's python3-grpcio), stubs generated from proto/control.proto
at test time. Drives a whole migration between two daemons and one error
case per status code. Prints "ok: ..." per check; exits 1 on the first
failure.

usage: grpc_interop.py STUBDIR migrate SOCK_A SOCK_B ADDR_B VM SPARE_VM
       grpc_interop.py STUBDIR denied SOCK
       grpc_interop.py STUBDIR tls IP:PORT CA CERT KEY
       grpc_interop.py STUBDIR hostile SOCK
       grpc_interop.py STUBDIR allowed SOCK
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import control_pb2 as pb  # noqa: E402
import control_pb2_grpc as rpc  # noqa: E402
import checks  # noqa: E402
from checks import check, expect_code  # noqa: E402

S = pb.MigrationState


def stub(sock):
    return rpc.MigrationdStub(grpc.insecure_channel(f"unix:{sock}"))


def denied(sock):
    e = expect_code("GetHealth as an unprivileged user", grpc.StatusCode.PERMISSION_DENIED,
                    stub(sock).GetHealth, pb.GetHealthRequest())
    check("PERMISSION_DENIED names the caller and the role", e is not None and
          "uid 65534" in e.details() and "GetHealth needs the read role" in e.details(),
          e.details() if e is not None else "")


def hostile(sock):
    import socket
    import struct

    def closed_after(data):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(10)
        c.connect(sock)
        c.sendall(data)
        try:
            while c.recv(65536):
                pass
        except ConnectionResetError:
            pass
        c.close()
        return True

    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    settings = struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0)
    check("garbage instead of the HTTP/2 preface: that client is closed",
          closed_after(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\xff" * 64))
    check("a frame longer than the peer allows: that client is closed",
          closed_after(preface + settings + struct.pack(">I", 0xffffff)[1:] + bytes([0, 0]) +
                       struct.pack(">I", 1) + b"\0" * 1024))
    check("HEADERS with a garbage header block: that client is closed",
          closed_after(preface + settings + struct.pack(">I", 8)[1:] + bytes([1, 5]) +
                       struct.pack(">I", 1) + b"\xff" * 8))
    # A gRPC call whose message is not the method's type: INVALID_ARGUMENT.
    raw = grpc.insecure_channel(f"unix:{sock}").unary_unary(
        "/migrationd.v1.Migrationd/GetMigration",
        request_serializer=lambda b: b, response_deserializer=lambda b: b)
    expect_code("a request that is not the method's message", grpc.StatusCode.INVALID_ARGUMENT,
                raw, b"\xff\xff\xff\xff")
    h = stub(sock).GetHealth(pb.GetHealthRequest(), timeout=10)
    check("the daemon still serves other clients", h.version != "")


def tls(target, ca, cert, key):
    rd = lambda p: open(p, "rb").read()  # noqa: E731
    creds = grpc.ssl_channel_credentials(rd(ca), rd(key), rd(cert))
    h = rpc.MigrationdStub(grpc.secure_channel(target, creds)).GetHealth(
        pb.GetHealthRequest(), timeout=10)
    check("GetHealth over TLS with a client certificate", h.control_tls and
          any(l.kind == "control-tcp" and l.address == target and l.tls for l in h.listeners))
    nocert = grpc.ssl_channel_credentials(rd(ca))
    expect_code("GetHealth over TLS without a client certificate",
                grpc.StatusCode.UNAVAILABLE,
                rpc.MigrationdStub(grpc.secure_channel(target, nocert)).GetHealth,
                pb.GetHealthRequest())


# The incoming VMs are attached on B.
def wait_attached(b, vm, spare):
    for _ in range(100):
        names = {v.name for v in b.ListMigrations(pb.ListMigrationsRequest(), timeout=10).vms}
        if vm in names and spare in names:
            break
        time.sleep(0.1)
    check("destination VMs attached", vm in names and spare in names, str(names))


# GetHealth on the source.
def check_health(a, sock_a):
    h = a.GetHealth(pb.GetHealthRequest(), timeout=10)
    check("health: version", h.version != "")
    check("health: latency source", h.latency_source.startswith("eBPF: ") or
          h.latency_source.startswith("user-space timestamps: "))
    check("health: eBPF state said plainly", h.ebpf == "loaded" or
          h.ebpf.startswith("user-space timestamps: "))
    check("health: control socket listed",
          any(l.kind == "control-unix" and l.address == sock_a for l in h.listeners))


# Error cases, one per status code.
def check_errors(a, b, vm, sock_a):
    expect_code("GetMigration of an unknown id", grpc.StatusCode.NOT_FOUND,
                a.GetMigration, pb.GetMigrationRequest(id_or_vm="m-000000000000"))
    expect_code("PrepareIncoming of an unknown VM", grpc.StatusCode.NOT_FOUND,
                b.PrepareIncoming, pb.PrepareIncomingRequest(vm="no-such-vm"))
    expect_code("StartMigration to a malformed address", grpc.StatusCode.INVALID_ARGUMENT,
                a.StartMigration, pb.StartMigrationRequest(vm=vm, destination="nowhere",
                                                           token="x"))
    expect_code("GetMigration without a key", grpc.StatusCode.INVALID_ARGUMENT,
                a.GetMigration, pb.GetMigrationRequest())
    unknown = grpc.insecure_channel(f"unix:{sock_a}").unary_unary(
        "/migrationd.v1.Migrationd/NoSuchMethod",
        request_serializer=pb.GetHealthRequest.SerializeToString,
        response_deserializer=pb.GetHealthResponse.FromString)
    expect_code("a method the service does not have", grpc.StatusCode.UNIMPLEMENTED,
                unknown, pb.GetHealthRequest())


# Prepare then cancel on the destination (token revoked).
def cancel_spare(b, spare):
    sp = b.PrepareIncoming(pb.PrepareIncomingRequest(vm=spare), timeout=10)
    check("spare prepared", sp.migration.state == S.PREPARED and len(sp.token) > 0)
    c = b.CancelMigration(pb.CancelMigrationRequest(id_or_vm=sp.migration.id), timeout=10)
    check("CancelMigration on the destination -> CANCELLED", c.migration.state == S.CANCELLED)
    expect_code("cancelling it twice", grpc.StatusCode.FAILED_PRECONDITION,
                b.CancelMigration, pb.CancelMigrationRequest(id_or_vm=sp.migration.id))


# Follows the migration, pausing it in post-copy and recovering it.
def watch_pause_recover(a, b, mid, vm):
    kinds, states, paused, recovered, progress_rates = [], [], False, False, []
    events = a.WatchMigration(pb.WatchMigrationRequest(id_or_vm=mid, interval_ms=200),
                              timeout=300)
    for ev in events:
        kinds.append(ev.kind)
        states.append(ev.migration.state)
        if ev.kind == pb.MigrationEvent.PROGRESS:
            progress_rates.append(ev.pages_per_s)
        if (not paused and ev.migration.state == S.POSTCOPY and
                ev.migration.pages_background + ev.migration.pages_demand > 0):
            r = a.PauseMigration(pb.PauseMigrationRequest(id_or_vm=mid), timeout=10)
            check("PauseMigration in post-copy -> PAUSED", r.migration.state == S.PAUSED)
            paused = True
            expect_code("CancelMigration after the VM left", grpc.StatusCode.FAILED_PRECONDITION,
                        a.CancelMigration, pb.CancelMigrationRequest(id_or_vm=mid))
            expect_code("PauseMigration on the destination side",
                        grpc.StatusCode.FAILED_PRECONDITION,
                        b.PauseMigration, pb.PauseMigrationRequest(id_or_vm=vm))
            expect_code("RecoverMigration to a malformed address",
                        grpc.StatusCode.INVALID_ARGUMENT,
                        a.RecoverMigration, pb.RecoverMigrationRequest(id_or_vm=mid,
                                                                       destination="x:y"))
        elif paused and not recovered and ev.migration.state == S.PAUSED:
            time.sleep(0.5)
            r = a.RecoverMigration(pb.RecoverMigrationRequest(id_or_vm=mid), timeout=10)
            check("RecoverMigration accepted", r.migration.id == mid)
            recovered = True
    check("watch: first event is a SNAPSHOT", kinds[:1] == [pb.MigrationEvent.SNAPSHOT])
    check("watch: saw STATE_CHANGE events", pb.MigrationEvent.STATE_CHANGE in kinds)
    check("watch: saw POSTCOPY, PAUSED, then COMPLETED",
          S.POSTCOPY in states and S.PAUSED in states and states[-1] == S.COMPLETED,
          str([S.Name(s) for s in states]))
    check("watch: progress events carry a rate",
          any(r > 0 for r in progress_rates), str(progress_rates))
    check("watch: stream ended with OK", events.code() == grpc.StatusCode.OK)


# Both ends' records of the finished migration, and its fault latency.
def check_completed(a, b, mid, vm):
    src = a.GetMigration(pb.GetMigrationRequest(id_or_vm=mid), timeout=10).migration
    dst = b.GetMigration(pb.GetMigrationRequest(id_or_vm=vm), timeout=10).migration
    check("source COMPLETED", src.state == S.COMPLETED)
    check("destination COMPLETED", dst.state == S.COMPLETED)
    check("every page installed once", dst.pages_installed == dst.pages_total and
          dst.install_eexist == 0, f"{dst.pages_installed}/{dst.pages_total}")
    check("resumed after the operator's pause", src.reconnects >= 1 or dst.reconnects >= 1)

    lat = b.GetFaultLatency(pb.GetFaultLatencyRequest(id_or_vm=vm), timeout=10)
    check("latency: source of the figures", lat.source == "user-space timestamps")
    check("latency: buckets add up to the count",
          sum(x.count for x in lat.buckets) == lat.count)
    check("latency: percentiles ordered",
          lat.p50_us <= lat.p90_us <= lat.p99_us <= lat.p999_us <= lat.max_us + 1e-9)
    check("latency: buckets ascending with bounds",
          all(x.lower_us < x.upper_us for x in lat.buckets) and
          all(lat.buckets[i].upper_us <= lat.buckets[i + 1].lower_us
              for i in range(len(lat.buckets) - 1)))


# ListMigrations filters; watches that end at once.
def check_lists(a, b, mid, vm, spare):
    lm = a.ListMigrations(pb.ListMigrationsRequest(state=S.COMPLETED, role=pb.SOURCE, vm=vm),
                          timeout=10)
    check("list filter state+role+vm", [m.id for m in lm.migrations] == [mid])
    lm = a.ListMigrations(pb.ListMigrationsRequest(state=S.PAUSED), timeout=10)
    check("list filter excludes other states", len(lm.migrations) == 0)
    lm = b.ListMigrations(pb.ListMigrationsRequest(state=S.CANCELLED), timeout=10)
    check("list filter finds the cancelled spare", [m.vm for m in lm.migrations] == [spare])
    expect_code("ListMigrations with an unknown role", grpc.StatusCode.INVALID_ARGUMENT,
                a.ListMigrations, pb.ListMigrationsRequest(role=7))
    expect_code("WatchMigration of an unknown migration", grpc.StatusCode.NOT_FOUND,
                lambda req, timeout: list(a.WatchMigration(req, timeout=timeout)),
                pb.WatchMigrationRequest(id_or_vm="nope"))
    # A watch of a finished migration: one event, then the end.
    evs = list(a.WatchMigration(pb.WatchMigrationRequest(id_or_vm=mid), timeout=10))
    check("watch of a finished migration: one event", len(evs) == 1 and
          evs[0].migration.state == S.COMPLETED)


def migrate(sock_a, sock_b, addr_b, vm, spare):
    a, b = stub(sock_a), stub(sock_b)

    wait_attached(b, vm, spare)
    check_health(a, sock_a)
    check_errors(a, b, vm, sock_a)
    cancel_spare(b, spare)

    # The real migration.
    p = b.PrepareIncoming(pb.PrepareIncomingRequest(vm=vm), timeout=10)
    check("PrepareIncoming -> PREPARED with a token",
          p.migration.state == S.PREPARED and len(p.token) >= 16)
    st = a.StartMigration(pb.StartMigrationRequest(vm=vm, destination=addr_b, token=p.token),
                          timeout=10)
    mid = st.migration.id
    check("StartMigration -> a source migration", st.migration.role == pb.SOURCE and
          mid.startswith("m-"))
    watch_pause_recover(a, b, mid, vm)
    check_completed(a, b, mid, vm)
    check_lists(a, b, mid, vm, spare)


def main():
    if sys.argv[2] == "denied":
        denied(sys.argv[3])
    elif sys.argv[2] == "allowed":
        h = stub(sys.argv[3]).GetHealth(pb.GetHealthRequest(), timeout=10)
        check("a member of [control] group is served", h.version != "")
    elif sys.argv[2] == "hostile":
        hostile(sys.argv[3])
    elif sys.argv[2] == "tls":
        tls(*sys.argv[3:7])
    else:
        migrate(*sys.argv[3:8])
    if checks.failures:
        print(f"{checks.failures} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")


main()
