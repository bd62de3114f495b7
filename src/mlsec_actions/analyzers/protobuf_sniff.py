"""ONNX and SavedModel recognised by their protobuf structure, in the way protobuf readers accept them.

Fields may come in any order, unknown fields are skipped by every protobuf reader (so they are allowed),
varints may be over-long (redundant continuation bytes are valid). A SavedModel that names no tag is
still recognised by its nesting: meta_graphs -> graph_def -> node -> op.
"""

from __future__ import annotations

# ONNX ModelProto field number -> protobuf wire type.
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}


def is_saved_model(head: bytes) -> bool:
    """SavedModel: fields 1 (schema version, varint) and 2 (meta_graphs) in any order, naming TensorFlow."""
    pos, seen = 0, set[int]()
    for _ in range(64):
        key = _varint(head, pos)
        if key is None:
            break
        tag, pos = key
        field, wire = tag >> 3, tag & 7
        if field not in (1, 2) or wire != {1: 0, 2: 2}[field]:
            if not seen:
                return False
            break  # past what the head shows of a meta graph: judge by what was read
        value = _varint(head, pos)
        if value is None:
            break
        seen.add(field)
        pos = value[1] + (value[0] if wire == 2 else 0)
        if pos >= len(head):
            break
    return 2 in seen and (b"tensorflow" in head or b"serve" in head or _graph_inside(head))


def _message_fields(data: bytes) -> dict[int, list[bytes]] | None:
    """A whole protobuf message's length-delimited fields (number -> payloads); None if `data` is not one."""
    pos, out = 0, dict[int, list[bytes]]()
    while pos < len(data):
        key = _varint(data, pos)
        if key is None or key[0] >> 3 == 0:
            return None
        tag, pos = key
        wire = tag & 7
        if wire == 0:
            value = _varint(data, pos)
            if value is None:
                return None
            pos = value[1]
        elif wire == 2:
            length = _varint(data, pos)
            if length is None or length[1] + length[0] > len(data):
                return None
            out.setdefault(tag >> 3, []).append(data[length[1]:length[1] + length[0]])
            pos = length[1] + length[0]
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            return None
    return out if pos == len(data) else None


def _graph_inside(head: bytes) -> bool:
    """SavedModel -> meta_graphs (2) -> graph_def (2) -> node (1) -> op (2), each a well-formed message."""
    top = _message_fields(head)
    for meta in (top or {}).get(2, []):
        for graph in (_message_fields(meta) or {}).get(2, []):
            for node in (_message_fields(graph) or {}).get(1, []):
                fields = _message_fields(node)
                if fields and fields.get(2):
                    return True
    return False


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def is_onnx(head: bytes) -> bool:
    """A ModelProto: ir_version and a graph or opset, in any order; known fields with their wire types,
    unknown fields allowed (protobuf readers skip them), over-long varints read as protobuf reads them."""
    pos, seen = 0, set()
    for _ in range(256):
        if pos >= len(head):
            break
        key = _varint(head, pos)
        if key is None:
            break
        tag, pos = key
        field, wire = tag >> 3, tag & 7
        if field == 0 or wire not in (0, 1, 2, 5) or _ONNX_FIELDS.get(field, wire) != wire:
            return False
        seen.add(field)
        if wire == 0:
            value = _varint(head, pos)
            if value is None:
                break
            if field == 1 and not 1 <= value[0] <= 20:
                return False
            pos = value[1]
        elif wire == 2:
            length = _varint(head, pos)
            if length is None:
                break
            pos = length[1] + length[0]
        else:
            pos += 8 if wire == 1 else 4
    return 1 in seen and bool({7, 8} & seen)
