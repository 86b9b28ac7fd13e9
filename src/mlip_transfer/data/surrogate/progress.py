"""Resume an interrupted surrogate build: each material's result is appended to a progress file
as soon as it is relaxed, and a rerun with the same settings and inputs skips what is there.

A paper-shaped build relaxes about a thousand materials with three teachers (hours on two
cores), so a kill or a time limit must not cost the work done. The file is JSON lines: a header
with what the results depend on, then one line per material. A line cut short by a kill is
the last one; it is ignored with a warning and that material is relaxed again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.core.files import dumps_json
from mlip_transfer.data import dataset
from mlip_transfer.data.surrogate.settings import BuildSettings

logger = logging.getLogger("mlip_transfer.data.surrogate")

PROGRESS_FILE = "build_progress.jsonl"
# Settings that change speed, never a result: a resumed build may use other values.
_SPEED_ONLY = ("processes",)


def _header(settings: BuildSettings, inputs: Mapping[str, str]) -> dict[str, Any]:
    depends = {k: v for k, v in asdict(settings).items() if k not in _SPEED_ONLY}
    # Through JSON once, so it compares equal to a header read back (tuples become lists).
    return json.loads(dumps_json({"kind": "header", "settings": depends, "inputs": dict(inputs)}))


def _encode(result: Mapping[str, Any]) -> str:
    frames = [frame.to_dict() for frame in result["frames"]]
    return dumps_json({**result, "kind": "material", "frames": frames}, indent=None)


def _decode(record: dict[str, Any], *, path: Path) -> dict[str, Any]:
    frames = [dataset.Frame.from_dict(frame, file=str(path)) for frame in record["frames"]]
    return {key: value for key, value in record.items() if key != "kind"} | {"frames": frames}


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError:
                yield number, None


class BuildProgress:
    """The progress file of one build folder.

    Args:
        out_dir: The build's output folder (the file sits inside it).
        settings: The build settings; all but ``processes`` must match to resume.
        inputs: Input file name -> sha256; must match to resume.
    """

    def __init__(self, *, out_dir: Path, settings: BuildSettings, inputs: Mapping[str, str]):
        self.path = Path(out_dir) / PROGRESS_FILE
        self._header = _header(settings, inputs)

    def load(self) -> list[dict[str, Any]]:
        """Results already in the file (none if it is absent).

        Raises:
            ConfigError: The file was written with other settings or inputs.
        """
        if not self.path.exists():
            return []
        results, lines = [], list(_lines(self.path))
        header = lines[0][1] if lines else None
        if header != self._header:
            raise ConfigError(self._mismatch(header))
        for number, record in lines[1:]:
            if record is None:
                if number != len(lines):
                    raise ConfigError(f"{self.path}: line {number} is not JSON; delete the file "
                                      "to start the build afresh")
                logger.warning("%s: ignoring line %d, cut short by an interruption", self.path,
                               number)
                continue
            results.append(_decode(record, path=self.path))
        logger.info("resuming: %d materials already relaxed (%s)", len(results), self.path)
        return results

    def _mismatch(self, header: dict[str, Any] | None) -> str:
        if not header or header.get("kind") != "header":
            return f"{self.path} has no header; delete it to start the build afresh"
        changed = sorted(
            f"{section}.{key}"
            for section in ("settings", "inputs")
            for key in set(header.get(section, {})) | set(self._header[section])
            if header.get(section, {}).get(key) != self._header[section].get(key)
        )
        return (f"{self.path} belongs to a build with other settings or inputs (changed: "
                f"{', '.join(changed)}); restore them to resume, or delete the file to start "
                "afresh")

    def start(self, resumed: list[dict[str, Any]]) -> None:
        """Rewrite the file with the header and the valid results (drops a cut-short line)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", encoding="utf-8") as handle:
            handle.write(dumps_json(self._header, indent=None) + "\n")
            handle.writelines(_encode(result) + "\n" for result in resumed)

    def append(self, result: Mapping[str, Any]) -> None:
        """Record one material's result; flushed at once, so a kill loses at most this line."""
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(_encode(result) + "\n")
            handle.flush()

    def finish(self) -> None:
        """The dataset is written: the progress file has served."""
        self.path.unlink(missing_ok=True)
