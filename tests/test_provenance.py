"""What a saved model records about its training: the query ids of its groups."""

from __future__ import annotations

import numpy as np
import pytest

from recctl.provenance import decode_query_ids, encode_query_ids


def test_query_ids_survive_the_meta_encoding() -> None:
    ids = np.array(["asm-2", "asm-1", 'a "quoted"\nid', "ünïcode", "asm-10"], dtype=object)
    decoded = decode_query_ids(encode_query_ids(ids))
    assert decoded.to_list() == sorted(ids.tolist())
    assert decode_query_ids(encode_query_ids(np.array([], dtype=object))).to_list() == []
    assert encode_query_ids(ids) == encode_query_ids(ids[::-1])  # a set: order does not matter
    with pytest.raises(ValueError, match="not a list of query ids"):
        decode_query_ids("not base64!")
