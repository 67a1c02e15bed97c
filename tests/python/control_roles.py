#!/usr/bin/python3
"""Roles, health and reflection on migrationd's control API, with the stock
Python gRPC client (Debian's python3-grpcio), stubs generated at test time
from proto/control.proto, proto/grpc/health/v1/health.proto and
proto/grpc/reflection/v1/reflection.proto. Prints "ok: ..." per check and
each refused call's status as "status: CODE: message"; exits 1 if a check
failed.

usage: control_roles.py STUBDIR TARGET CREDS COMMAND [ARGS]
  TARGET   unix:PATH, or IP:PORT (TLS)
  CREDS    "-" for a Unix socket, else CA,CERT,KEY (PEM files)
commands:
  health              grpc.health.v1 Check and Watch
  read                may read; StartMigration and PrepareIncoming refused
  none VM             no role: every migrationd call refused, health served
  handshake           the TLS handshake fails: every call UNAVAILABLE
  prepare VM          PrepareIncoming; prints "token: T"
  start VM DEST TOKEN StartMigration, then GetMigration until COMPLETED
  invalid             StartMigration without a VM, CancelMigration of none
  forger COMM VM      as a process named COMM (prctl), StartMigration (refused)
  reflect             server reflection, v1 and v1alpha, on one stream each
  watch-stop          a health Watch kept open while the daemon stops: SERVING,
                      then NOT_SERVING, then the stream ends OK
"""
import queue
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
import control_pb2 as pb  # noqa: E402
import control_pb2_grpc as rpc  # noqa: E402
import checks  # noqa: E402
from checks import check, expect_code  # noqa: E402
import health_pb2 as hpb  # noqa: E402
import health_pb2_grpc as hrpc  # noqa: E402
import reflection_pb2 as rpb  # noqa: E402

PD = grpc.StatusCode.PERMISSION_DENIED


def channel(target, creds):
    if creds == "-":
        return grpc.insecure_channel(target)
    ca, cert, key = (open(p, "rb").read() for p in creds.split(","))
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(ca, key, cert))


def health(ch):
    h = hrpc.HealthStub(ch)
    S = hpb.HealthCheckResponse
    for svc in ("", "migrationd.v1.Migrationd"):
        r = h.Check(hpb.HealthCheckRequest(service=svc), timeout=15)
        check(f"health Check '{svc}' SERVING", r.status == S.SERVING, str(r))
    expect_code("health Check of an unknown service", grpc.StatusCode.NOT_FOUND, h.Check,
                hpb.HealthCheckRequest(service="no.such.Service"))
    w = h.Watch(hpb.HealthCheckRequest(service=""), timeout=2)
    first = next(w)
    check("health Watch sends SERVING first", first.status == S.SERVING, str(first))
    try:
        more = next(w)
        check("health Watch stays open (no end, no second status)", False, str(more))
    except grpc.RpcError as e:
        check("health Watch stays open until the client's deadline",
              e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.code().name)
    w = h.Watch(hpb.HealthCheckRequest(service="no.such.Service"), timeout=2)
    first = next(w)
    check("health Watch of an unknown service: SERVICE_UNKNOWN",
          first.status == S.SERVICE_UNKNOWN, str(first))
    w.cancel()


def read(ch):
    s = rpc.MigrationdStub(ch)
    hl = s.GetHealth(pb.GetHealthRequest(), timeout=15)
    check("read role: GetHealth", hl.version != "")
    s.ListMigrations(pb.ListMigrationsRequest(), timeout=15)
    check("read role: ListMigrations", True)
    expect_code("read role: GetMigration of none", grpc.StatusCode.NOT_FOUND, s.GetMigration,
                pb.GetMigrationRequest(id_or_vm="no-such-vm"))
    expect_code("read role: StartMigration", PD, s.StartMigration,
                pb.StartMigrationRequest(vm="roles-vm", destination="192.0.2.9:1", token="x"),
                "has the read role only; StartMigration needs the operate role")
    expect_code("read role: PrepareIncoming", PD, s.PrepareIncoming,
                pb.PrepareIncomingRequest(vm="roles-vm"),
                "PrepareIncoming needs the operate role")


def none(ch, vm):
    s = rpc.MigrationdStub(ch)
    expect_code("no role: GetHealth", PD, s.GetHealth, pb.GetHealthRequest(),
                "has no role here; GetHealth needs the read role")
    expect_code("no role: ListMigrations", PD, s.ListMigrations, pb.ListMigrationsRequest(),
                "ListMigrations needs the read role")
    expect_code("no role: StartMigration", PD, s.StartMigration,
                pb.StartMigrationRequest(vm=vm, destination="192.0.2.9:1", token="x"),
                "has no role here; StartMigration needs the operate role")
    refl = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                            request_serializer=rpb.ServerReflectionRequest.SerializeToString,
                            response_deserializer=rpb.ServerReflectionResponse.FromString)
    try:
        list(refl(iter([rpb.ServerReflectionRequest(list_services="")]), timeout=15))
        check("no role: reflection refused", False, "(answered)")
    except grpc.RpcError as e:
        print(f"status: {e.code().name}: {e.details()}")
        check("no role: reflection refused", e.code() == PD and
              "needs the read role" in e.details(), f"{e.code().name}: {e.details()}")
    r = hrpc.HealthStub(ch).Check(hpb.HealthCheckRequest(), timeout=15)
    check("no role: health Check still SERVING",
          r.status == hpb.HealthCheckResponse.SERVING)


def handshake(ch):
    s = rpc.MigrationdStub(ch)
    expect_code("GetHealth with a certificate the control CA did not sign",
                grpc.StatusCode.UNAVAILABLE, s.GetHealth, pb.GetHealthRequest())
    expect_code("health Check with that certificate", grpc.StatusCode.UNAVAILABLE,
                hrpc.HealthStub(ch).Check, hpb.HealthCheckRequest())


def prepare(ch, vm):
    # One call (every call is audited): the caller waits for the VM first.
    r = rpc.MigrationdStub(ch).PrepareIncoming(pb.PrepareIncomingRequest(vm=vm), timeout=15)
    print(f"token: {r.token}")
    check("operate role: PrepareIncoming", r.token != "")


def start(ch, vm, dest, token):
    s = rpc.MigrationdStub(ch)
    m = s.StartMigration(pb.StartMigrationRequest(vm=vm, destination=dest, token=token),
                         timeout=15).migration
    check("operate role: StartMigration", m.id.startswith("m-"), str(m))
    for _ in range(3000):
        m = s.GetMigration(pb.GetMigrationRequest(id_or_vm=m.id), timeout=15).migration
        if m.state in (pb.COMPLETED, pb.FAILED, pb.CANCELLED):
            break
        time.sleep(0.1)
    check("the migration driven over TCP completed", m.state == pb.COMPLETED,
          pb.MigrationState.Name(m.state) + " " + m.reason)


def invalid(ch):
    s = rpc.MigrationdStub(ch)
    expect_code("operate role: StartMigration without a VM", grpc.StatusCode.INVALID_ARGUMENT,
                s.StartMigration, pb.StartMigrationRequest(destination="192.0.2.9:1"))
    expect_code("operate role: CancelMigration of none", grpc.StatusCode.NOT_FOUND,
                s.CancelMigration, pb.CancelMigrationRequest(id_or_vm="no such vm"))


def forger(ch, comm, vm):
    import ctypes
    # PR_SET_NAME: the name /proc/PID/comm shows, which the daemon reads.
    ctypes.CDLL(None, use_errno=True).prctl(15, comm.encode(), 0, 0, 0)
    check("process renamed", open("/proc/self/comm").read().rstrip("\n") == comm[:15])
    expect_code("StartMigration by a process with a hostile name", PD,
                rpc.MigrationdStub(ch).StartMigration,
                pb.StartMigrationRequest(vm=vm, destination="192.0.2.9:1", token="x"))


def reflect_one(ch, version):
    refl = ch.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                            request_serializer=rpb.ServerReflectionRequest.SerializeToString,
                            response_deserializer=rpb.ServerReflectionResponse.FromString)
    q = queue.Queue()

    def requests():
        for _ in range(100):
            r = q.get(timeout=15)
            if r is None:
                return
            yield r
    # One stream, each request sent only once the previous one is answered.
    call = refl(requests(), timeout=15)
    q.put(rpb.ServerReflectionRequest(list_services=""))
    r = next(call)
    names = {x.name for x in r.list_services_response.service}
    check(f"{version}: list_services has migrationd.v1.Migrationd and the standard ones",
          {"migrationd.v1.Migrationd", "grpc.health.v1.Health",
           "grpc.reflection.v1.ServerReflection",
           "grpc.reflection.v1alpha.ServerReflection"} <= names, str(names))
    for ask in (dict(file_containing_symbol="migrationd.v1.Migrationd"),
                dict(file_containing_symbol="migrationd.v1.Migrationd.StartMigration"),
                dict(file_containing_symbol="migrationd.v1.MigrationEvent.Kind"),
                dict(file_by_filename="control.proto")):
        q.put(rpb.ServerReflectionRequest(**ask))
        r = next(call)
        fds = r.file_descriptor_response.file_descriptor_proto
        check(f"{version}: {ask}: one file descriptor", len(fds) == 1, str(r)[:200])
        if not fds:
            continue
        fd = descriptor_pb2.FileDescriptorProto.FromString(fds[0])
        svc = {s.name: [m.name for m in s.method] for s in fd.service}
        check(f"{version}: descriptor_pb2 parses it: {fd.name}, package {fd.package}, "
              "service Migrationd with StartMigration",
              fd.name == "control.proto" and fd.package == "migrationd.v1" and
              "StartMigration" in svc.get("Migrationd", []), str(svc))
    q.put(rpb.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health"))
    r = next(call)
    fd = descriptor_pb2.FileDescriptorProto.FromString(
        r.file_descriptor_response.file_descriptor_proto[0])
    check(f"{version}: the health service's file", fd.name == "grpc/health/v1/health.proto")
    q.put(rpb.ServerReflectionRequest(file_containing_symbol="migrationd.v1.NoSuchThing"))
    r = next(call)
    check(f"{version}: an unknown symbol: error_response NOT_FOUND",
          r.WhichOneof("message_response") == "error_response" and
          r.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0], str(r))
    q.put(None)
    rest = list(call)
    check(f"{version}: the stream ends OK when the client is done",
          rest == [] and call.code() == grpc.StatusCode.OK, str(call.code()))


def watch_stop(ch):
    h = hrpc.HealthStub(ch)
    S = hpb.HealthCheckResponse
    w = h.Watch(hpb.HealthCheckRequest(service="migrationd.v1.Migrationd"), timeout=60)
    first = next(w)
    check("health Watch sends SERVING first", first.status == S.SERVING, str(first))
    print("watching", flush=True)
    try:
        rest = [r.status for r in w]
        code = w.code()
    except grpc.RpcError as e:
        rest, code = [], e.code()
    check("when the daemon stops, the Watch hears NOT_SERVING once",
          rest == [S.NOT_SERVING], str(rest))
    check("and the stream then ends OK", code == grpc.StatusCode.OK, str(code))


def main():
    ch = channel(sys.argv[2], sys.argv[3])
    cmd, args = sys.argv[4], sys.argv[5:]
    if cmd == "reflect":
        reflect_one(ch, "v1")
        reflect_one(ch, "v1alpha")
    else:
        {"health": health, "read": read, "none": none, "handshake": handshake,
         "prepare": prepare, "start": start, "invalid": invalid,
         "forger": forger, "watch-stop": watch_stop}[cmd](ch, *args)
    sys.exit(1 if checks.failures else 0)


main()
