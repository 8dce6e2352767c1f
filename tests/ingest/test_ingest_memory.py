"""Peak memory of an ingest, measured in a fresh process (its own VmHWM),
for the files that used to take gigabytes: a DOCX that inflates to 1 GiB (2.7 GB peak before)
and a 200 MB text file (~4.5 GB of vectors held as Python lists before)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import docx
import pytest

GIB = 1024**3
MB = 1024**2

INGEST_AND_MEASURE = """
import json, sys
from pathlib import Path
from core.config import Settings
from core.service import Loupe
loupe = Loupe(Settings(data_dir=Path(sys.argv[1]), llm="extractive"))
results = loupe.ingestor.ingest_paths([Path(sys.argv[2])])
# Not ru_maxrss: Linux carries the parent's high-water mark into a child across exec, so a
# pytest process that has loaded the models would make every child look 2.5 GB big.
status = Path("/proc/self/status").read_text().splitlines()
[peak_kib] = [int(line.split()[1]) for line in status if line.startswith("VmHWM")]
print(json.dumps({"results": [r.__dict__ for r in results], "peak_mb": peak_kib / 1024}))
"""


def ingest_in_fresh_process(data_dir: Path, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", INGEST_AND_MEASURE, str(data_dir), str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def write_inflating_docx(path: Path, inflated: int) -> None:
    """A real DOCX whose body is padded with spaces, streamed so the test holds none of it."""
    document = docx.Document()
    document.add_paragraph("Tiny.")
    real = io.BytesIO()
    document.save(real)
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename != "word/document.xml":
                out.writestr(info, data)
                continue
            with out.open(info.filename, "w", force_zip64=True) as part:
                closing = data.rindex(b"</w:body>")
                part.write(data[:closing])
                block = b" " * (16 * MB)
                for _ in range(inflated // len(block)):
                    part.write(block)
                part.write(data[closing:])


def test_docx_inflating_to_1_gib_is_refused_under_1_gb_peak(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    write_inflating_docx(bomb, GIB)
    assert bomb.stat().st_size < 2 * MB
    measured = ingest_in_fresh_process(tmp_path / "data", bomb)
    [result] = measured["results"]  # type: ignore[misc]
    assert result["outcome"] == "failed" and "zip bomb" in result["error"]
    assert float(measured["peak_mb"]) < 1024, measured  # type: ignore[arg-type]


@pytest.mark.slow
def test_200_mb_text_file_is_refused_by_the_size_limit_under_2_gb_peak(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    line = b"Wind turbines convert the kinetic energy of wind into electricity.\n"
    with big.open("wb") as out:
        for _ in range(200 * MB // len(line) + 1):
            out.write(line)
    measured = ingest_in_fresh_process(tmp_path / "data", big)
    [result] = measured["results"]  # type: ignore[misc]
    assert result["outcome"] == "failed" and "LOUPE_MAX_FILE_MB" in result["error"]
    assert "200.0 MB" in result["error"]
    assert float(measured["peak_mb"]) < 2048, measured  # type: ignore[arg-type]
