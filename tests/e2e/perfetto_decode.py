"""Reading our Perfetto export back as trace_processor would, without it:
inflate the compressed bundles, decode the packets with protoc and our
schema, then replay each packet sequence's state (defaults, interned
strings, the incremental clock) to get every event's absolute time, track,
name, categories and arguments. Whatever the file gets wrong on the way
(an iid used before its sequence defined it, a missing flag) is collected
in `problems`, so tests can assert there are none."""

import ast
import os
import re
import subprocess
import zlib

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROTO = os.path.join(REPO, "src", "export", "perfetto_trace.proto")

SEQ_INCREMENTAL_STATE_CLEARED = 1
SEQ_NEEDS_INCREMENTAL_STATE = 2
CLOCK_MONOTONIC = 3


def _varint(data, pos):
    shift = value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(data):
    """(field, wire type, value or bytes) of one message, top level only."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(data, pos)
            value, pos = data[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield field, wire, value


def inflate(data):
    """The file with every compressed_packets bundle replaced by the
    packets it holds: a plain Trace protoc can decode. Also returns how
    many bundles there were."""
    out, bundles = bytearray(), 0
    for field, wire, packet in _fields(data):
        assert field == 1 and wire == 2, "a Trace holds only packets"
        inner = [v for f, w, v in _fields(packet) if f == 50]
        if inner:
            bundles += 1
            for blob in inner:
                out += inflate(zlib.decompress(blob))[0]
        else:
            out += bytes([0x0A]) + _encode_varint(len(packet)) + packet
    return bytes(out), bundles


def _encode_varint(v):
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def parse_text_proto(text):
    """protoc's text format as nested dicts of lists."""
    root, stack = {}, []
    node = root
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line == "}":
            node = stack.pop()
        elif line.endswith("{"):
            child = {}
            node.setdefault(line[:-1].strip(), []).append(child)
            stack.append(node)
            node = child
        else:
            key, value = line.split(":", 1)
            value = value.strip()
            node.setdefault(key, []).append(ast.literal_eval("b" + value).decode() if value.startswith('"') else
                                            int(value) if re.fullmatch(r"-?\d+", value) else value)
    return root


def decode_packets(path):
    """(packets as dicts, bundle count, inflated size) of an export."""
    with open(path, "rb") as f:
        plain, bundles = inflate(f.read())
    proc = subprocess.run(["protoc", f"--proto_path={os.path.dirname(PROTO)}", "--decode=perfetto.protos.Trace",
                           PROTO], input=plain, capture_output=True, timeout=300)
    if proc.returncode:
        raise RuntimeError(f"protoc --decode: {proc.stderr.decode()[-300:]}")
    return parse_text_proto(proc.stdout.decode()).get("packet", []), bundles, len(plain)


def one(msg, key, default=None):
    return msg.get(key, [default])[0]


class _Sequence:
    def __init__(self):
        self.cleared = False
        self.clock_id = 0
        self.track = 0
        self.clock = None  # the incremental clock's value once a snapshot set it
        self.tables = {"event_categories": {}, "event_names": {}, "debug_annotation_names": {},
                       "debug_annotation_string_values": {}}


class Decoded:
    """descriptors: TrackDescriptor dicts; events: one dict per TrackEvent
    with seq, ts, track, type, name, categories, args, flow_ids,
    terminating_flow_ids; problems: what trace_processor would reject."""

    def __init__(self, packets):
        self.descriptors, self.events, self.problems = [], [], []
        self.sequences = {}
        self.declared = set()  # uuids described so far: upstream wants a descriptor before its track's events
        for p in packets:
            self._packet(p)

    def _problem(self, text):
        if len(self.problems) < 20:
            self.problems.append(text)

    def _packet(self, p):
        seq_id = one(p, "trusted_packet_sequence_id")
        if seq_id is None:
            self._problem("a packet without trusted_packet_sequence_id")
            return
        flags = one(p, "sequence_flags", 0)
        seq = self.sequences.get(seq_id)
        if seq is None:
            seq = self.sequences[seq_id] = _Sequence()
            if not flags & SEQ_INCREMENTAL_STATE_CLEARED:
                self._problem(f"sequence {seq_id}'s first packet does not clear its incremental state")
        if flags & SEQ_INCREMENTAL_STATE_CLEARED:
            seq.__init__()
            seq.cleared = True
        defaults = one(p, "trace_packet_defaults")
        if defaults:
            seq.clock_id = one(defaults, "timestamp_clock_id", 0)
            seq.track = one(one(defaults, "track_event_defaults", {}), "track_uuid", 0)
        for table, entries in one(p, "interned_data", {}).items():
            for e in entries:
                if e["iid"][0] in seq.tables[table]:
                    self._problem(f"sequence {seq_id} redefines {table} iid {e['iid'][0]}")
                seq.tables[table][e["iid"][0]] = one(e, "name", one(e, "str"))
        snapshot = one(p, "clock_snapshot")
        if snapshot:
            for c in snapshot.get("clocks", []):
                if one(c, "is_incremental") == "true":
                    seq.clock = one(c, "timestamp")
            return
        if "track_descriptor" in p:
            self.descriptors.append(one(p, "track_descriptor"))
            self.declared.add(one(self.descriptors[-1], "uuid"))
        event = one(p, "track_event")
        if event:
            self._event(seq_id, seq, flags, p, event)

    def _timestamp(self, seq_id, seq, p):
        ts = one(p, "timestamp")
        clock = one(p, "timestamp_clock_id", seq.clock_id)
        if ts is None:
            self._problem(f"an event without timestamp on sequence {seq_id}")
            return None
        if 64 <= clock < 128:
            if seq.clock is None:
                self._problem(f"sequence {seq_id} uses its clock {clock} before a ClockSnapshot")
                return None
            seq.clock += ts
            return seq.clock
        if clock not in (0, CLOCK_MONOTONIC):
            self._problem(f"clock {clock}")
        return ts

    def _lookup(self, seq_id, seq, table, iid):
        value = seq.tables[table].get(iid)
        if value is None:
            self._problem(f"{table} iid {iid} used on sequence {seq_id} before it was defined")
        return value

    def _event(self, seq_id, seq, flags, p, e):
        if not flags & SEQ_NEEDS_INCREMENTAL_STATE:
            self._problem(f"an event on sequence {seq_id} without SEQ_NEEDS_INCREMENTAL_STATE")
        ts = self._timestamp(seq_id, seq, p)
        name = one(e, "name")
        if "name_iid" in e:
            name = self._lookup(seq_id, seq, "event_names", e["name_iid"][0])
        cats = [self._lookup(seq_id, seq, "event_categories", c) for c in e.get("category_iids", [])]
        args = {}
        for a in e.get("debug_annotations", []):
            key = self._lookup(seq_id, seq, "debug_annotation_names", one(a, "name_iid"))
            if "string_value_iid" in a:
                args[key] = self._lookup(seq_id, seq, "debug_annotation_string_values", a["string_value_iid"][0])
            else:
                args[key] = one(a, "uint_value", one(a, "pointer_value", one(a, "string_value")))
        track = one(e, "track_uuid", seq.track)
        if track not in self.declared:
            self._problem(f"an event on track {track} before its TrackDescriptor")
        self.events.append({"seq": seq_id, "ts": ts, "track": track,
                            "type": one(e, "type"), "name": name, "categories": cats, "args": args,
                            "flow_ids": e.get("flow_ids", []),
                            "terminating_flow_ids": e.get("terminating_flow_ids", [])})


def decode(path):
    """The export at path, decoded and resolved (a Decoded)."""
    packets, _, _ = decode_packets(path)
    return Decoded(packets)


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: perfetto_decode.py FILE.pftrace  (prints its packets, bundles inflated, as protoc does)")
    with open(sys.argv[1], "rb") as f:
        plain, _ = inflate(f.read())
    sys.exit(subprocess.run(["protoc", f"--proto_path={os.path.dirname(PROTO)}", "--decode=perfetto.protos.Trace",
                             PROTO], input=plain).returncode)
