"""A real training process whose steps are slowed down, for the kill / signal / lock tests.

``python -m tests.train._slow_train STORE OUT DELAY PRESET [KEY=VALUE ...]`` trains like ``facesr train``
(the CLI's reporter, exit code 130 when interrupted, one line for a FacesrError) and sleeps ``DELAY`` seconds
after each optimizer step through the trainer's ``on_step`` parameter (no environment hooks).
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    from facesr.commands.train import RichTrainReporter
    from facesr.errors import FacesrError
    from facesr.train.config import load_config
    from facesr.train.trainer import train

    store, out, delay, preset, *sets = argv
    cfg = load_config(preset, sets)
    try:
        result = train(cfg, store, out, reporter=RichTrainReporter(every=cfg.log_every),
                       on_step=lambda batches, res: time.sleep(float(delay)))
    except FacesrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 130 if result.reason == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
