"""``python -m recctl.cli.show``: a ranked batch (rank's JSON on stdin) as a short table, for the demo."""

from __future__ import annotations

import json
import sys


def main() -> None:
    document = json.load(sys.stdin)
    for item in document["recommendations"]:
        score = item.get("ml_score")
        shown = f"{score:+.3f}" if isinstance(score, float) else "   -  "
        print(
            f"{item['rank']:>3}  {shown}  conf {item.get('confidence_score', 0):.2f}  "
            f"{item.get('category', ''):<18} {item.get('title', '')}"
        )
    print("summary:", json.dumps(document["summary"]))


if __name__ == "__main__":
    main()
