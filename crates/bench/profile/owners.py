"""Reads `perf script` output (DWARF call graphs) and prints where goproxy-ha's hit path
spends its time: each sample goes to the innermost frame that names a component (kernel
samples to the syscall they are in), so the shares add up to 100%; then the share of
samples whose stack holds a given function (inclusive, overlapping).

usage: python3 owners.py SCRIPT.txt [...]
"""
import collections
import re
import sys

# Kernel samples, by the syscall on their stack (the first that matches).
SYSCALLS = [
    ("kernel: writev (TCP transmit incl. loopback delivery to the client)",
     r"do_writev|__sys_sendto|ksys_write|sock_write_iter|tcp_sendmsg"),
    ("kernel: recvfrom", r"__sys_recvfrom|ksys_read|tcp_recvmsg"),
    ("kernel: epoll_wait", r"epoll_wait|ep_poll"),
    ("kernel: futex (worker park/unpark)", r"futex"),
    ("kernel: madvise (allocator trimming)", r"madvise"),
    ("kernel: preempted on syscall exit", r"exit_to_user_mode_loop"),
    ("kernel: other syscalls", r"do_syscall_64"),
    ("kernel: interrupts", r"irq|sysvec"),
]
# User samples, by the innermost frame naming one of these (checked in this order).
OWNERS = [
    ("moka caches (entries, small_blobs)", r"moka::"),
    ("sled", r"sled::"),
    ("serde_json", r"serde_json"),
    ("tracing", r"tracing"),
    ("metrics", r"prometheus_client|goproxy_http::metrics"),
    ("access/audit/downloads/recent", r"goproxy_audit|goproxy_access|goproxy_http::access|goproxy_http::audited|goproxy_http::operate"),
    ("route parsing (goproxy_protocol)", r"goproxy_protocol::"),
    ("route table (goproxy_routing, routed)", r"goproxy_routing|goproxy_http::routed"),
    ("blob_response (headers, ETag)", r"goproxy_http::serve"),
    ("Frontend::artifact / serve_entry", r"goproxy_http::artifacts"),
    ("Frontend::dispatch / handle", r"goproxy_http::frontend"),
    ("axum (router, extractors)", r"axum::|axum_core::|matchit::"),
    ("http crate (HeaderMap, builders)", r"^<?http::"),
    ("hyper h1 role (parse head, encode head)", r"hyper::proto::h1::role"),
    ("hyper h1 io/dispatch", r"hyper::|hyper_util::"),
    ("listener (TimedIo, Activity, Tracked)", r"goproxy_http::listener"),
    ("tokio (scheduler, io driver, timers)", r"tokio::|mio::"),
]
# Inclusive views: functions whose whole subtree is interesting.
INCLUSIVE = [
    ("route::parse + semver + path checks", r"goproxy_protocol::(route|semver|path)"),
    ("RouteTable split_path / routed::route", r"goproxy_routing|goproxy_http::routed"),
    ("moka get/insert", r"moka::"),
    ("sled (index lookups)", r"sled::"),
    ("blob_response", r"goproxy_http::serve::blob_response"),
    ("tokio timers (TimedIo deadlines)", r"tokio::runtime::time|tokio::time::sleep"),
    ("hyper: BytesMut::reserve (a new read buffer per request)", r"BytesMut::reserve"),
    ("metrics", r"goproxy_http::metrics|prometheus_client"),
    ("recent/audit note/downloads", r"goproxy_http::operate|goproxy_http::audited|goproxy_audit"),
    ("tracing", r"tracing"),
    ("serde_json", r"serde_json"),
]
LEAF = [
    ("malloc/free", r"malloc|_int_free|cfree|malloc_consolidate|realloc|__libc_free"),
    ("memcpy/memmove/memcmp", r"__mem(move|cpy|set|cmp)"),
    ("kernel copy into the socket buffer", r"_copy_from_iter|copy_user"),
]


def samples(path):
    """Yields each sample's frames, innermost first, as `symbol+off (dso)` strings."""
    stack, head = [], None
    for line in open(path, errors="replace"):
        if not line.strip():
            if head is not None and stack:
                yield stack
            stack, head = [], None
        elif not line.startswith(("\t", " ")):
            head = line
        else:
            parts = line.strip().split(" ", 1)
            stack.append(parts[1] if len(parts) > 1 else parts[0])
    if head is not None and stack:
        yield stack


def first(table, text):
    return next((name for name, pattern in table if re.search(pattern, text)), None)


def report(path):
    owners, inclusive, leaves = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for stack in samples(path):
        total += 1
        text = "\n".join(stack)
        for name, pattern in INCLUSIVE:
            if re.search(pattern, text):
                inclusive[name] += 1
        for name, pattern in LEAF:
            if re.search(pattern, stack[0]):
                leaves[name] += 1
        if "[kernel.kallsyms]" in stack[0]:
            owners[first(SYSCALLS, text) or "kernel: other"] += 1
            continue
        owner = next((o for o in (first(OWNERS, f) for f in stack) if o), "other user")
        owners[owner] += 1
    pct = lambda n: f"{100 * n / max(total, 1):5.1f}%"
    print(f"{path}: {total} samples; by innermost component")
    for name, n in owners.most_common():
        print(f"  {pct(n)}  {name}")
    print("  inclusive (stack holds):")
    for name, _ in INCLUSIVE:
        print(f"  {pct(inclusive[name])}  {name}")
    print("  leaf kinds: " + ", ".join(f"{name} {pct(n).strip()}" for name, n in leaves.most_common()))


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        report(arg)
