"""The floor under ``leadferry run`` (issue 15, target 1): each piece of the job alone, beside
leadferry, on the same pages, in one run.

    uv run python bench/bench_floor.py                          # 1,000,000 leads
    uv run python bench/bench_floor.py --leads 100000 --small 0 --rounds 1

The LeadExec simulator (bench_sync's) serves N leads; its pages (the connector's own requests:
skip/take 1,000, one window holding every lead) are saved once to a temporary folder. Each piece of
the job then runs in a fresh process, ``--rounds`` times, the least CPU counting; a piece times
its own work with ``time.process_time`` (every thread of the process, user + system), so that its
imports and start-up are left to the ``imports`` piece:

- ``HTTP``: every page from the simulator, ``CONCURRENCY`` at a time (the first page alone, as
  leadferry fetches them), bodies read whole, with httpx2 (its own transport), httpx2 on
  leadferry's urllib3 transport (leadferry's client), urllib3 and http.client;
- ``xml2arrow parse``: the saved pages through xml2arrow only, with the fields page 0 shows;
- ``leadferry's reader``: the same through the known-fields reader (parse + the proof that the
  page is well-formed), as ``leadferry run`` reads every page after the first;
- ``typing``: the reader's text columns into the final Arrow schema (leadferry's BatchBuilder);
- ``DuckDB insert``: the typed tables of every page into a DuckDB file, one thread, one
  transaction (close included);
- not a floor piece: ``through Parquet``, the same tables written to Parquet files (encoded as
  leadferry's runs have dlt write them) and inserted from them, as leadferry's load goes;
- not a floor piece: ``through Arrow IPC``, the same through uncompressed Arrow IPC files,
  memory-mapped and inserted as Arrow: what a load that staged a run without dlt's extract
  could do;
- ``imports``: a whole process that imports what a minimal script needs (the fastest HTTP
  client, pyarrow, xml2arrow, DuckDB) and exits;
- not a floor piece: ``leadferry's connector``, its whole fetch from the simulator (HTTP, reader
  and typing on its 4 page threads, as in a run), so that ``leadferry run`` splits in two: the
  connector, and the rest (start-up, dlt's extract, the load, teardown).

The bare floor is the fastest HTTP client + parse + typing + insert + imports. Beside it, on the
same simulator, ``raw fetch`` and ``leadferry run`` (bench_sync's contenders: the whole process's
CPU, wall time, peak RSS), ``--rounds`` times each, the least CPU and the least wall time counting,
and ``leadferry run`` once more at ``--small`` leads (its own simulator) to show that its memory
does not grow with N. Targets are printed as PASS/FAIL; nothing here asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench_sync import (
    CONCURRENCY,
    LID,
    PAGE,
    SIM_DAYS,
    Result,
    Simulator,
    _requests,
    child_env,
    leadexec_connector,
    machine,
    measure,
    run_leadferry,
    run_raw,
    simulator_window,
    verdict,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from leadferry.connectors.leadexec import LeadExecConnector
    from leadferry.connectors.plain_xml import PlainColumns

TARGET_FLOOR = 1.3  # leadferry's CPU at most 1.3x the floor's
TARGET_RAW = 0.8  # ... and its rate at least 0.8 of the raw fetch's
TARGET_RSS_MB = 250.0  # peak RSS at most 250 MB ...
TARGET_RSS_SPREAD = 0.2  # ... and within 20% between --small and --leads

LEADFERRY_HTTP = "httpx2+urllib3"
HTTP_CLIENTS = ("httpx2", LEADFERRY_HTTP, "urllib3", "http.client")
"""The HTTP pieces' clients, each named as the modules a minimal script using it imports (joined
by "+"); leadferry's is httpx2's client on a urllib3 transport."""
MINIMAL_IMPORTS = "pyarrow, pyarrow.compute, xml2arrow, duckdb"
URLS = "urls.json"


@dataclass
class Piece:
    name: str
    cpu: list[float]
    """CPU seconds of each round."""

    @property
    def best(self) -> float:
        return min(self.cpu)


# -- the pages -----------------------------------------------------------------------------------


def save_pages(url: str, leads: int, folder: Path) -> None:
    """Fetch every page leadferry would ask *url* for into *folder*, and their URLs."""
    client, request = _requests(url)
    pages = -(-leads // PAGE)
    urls = [str(request(page).url) for page in range(pages)]
    for page, page_url in enumerate(urls):
        response = client.get(page_url, headers={"Accept": "application/xml"})
        response.raise_for_status()
        (folder / f"{page:05}.xml").write_bytes(response.content)
    (folder / URLS).write_text(json.dumps(urls))
    client.close()


def saved_pages(folder: Path) -> Iterator[bytes]:
    for path in sorted(folder.glob("*.xml")):
        yield path.read_bytes()


# -- the pieces, each in its own process ---------------------------------------------------------


def fetch_all(urls: list[str], get: Callable[[str], bytes]) -> int:
    """Bytes of every page, fetched as leadferry does: the first alone, then CONCURRENCY at
    a time."""
    total = len(get(urls[0]))
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        total += sum(map(len, pool.map(get, urls[1:])))
    return total


def http_get(client: str, urls: list[str]) -> Callable[[str], bytes]:
    """A function URL -> body with *client*, its connections kept for the whole fetch."""
    headers = {"Accept": "application/xml"}
    if client.startswith("httpx2"):
        import httpx2

        from leadferry.run.client import new_client
        from leadferry.settings import Settings

        if client == LEADFERRY_HTTP:
            pool = new_client(Settings(concurrency=CONCURRENCY))
        else:
            limits = httpx2.Limits(max_connections=CONCURRENCY + 2)
            pool = httpx2.Client(timeout=60.0, limits=limits)

        def get(url: str) -> bytes:
            response = pool.get(url, headers=headers)
            response.raise_for_status()
            return response.content

        return get
    if client == "urllib3":
        import urllib3

        manager = urllib3.PoolManager(maxsize=CONCURRENCY, block=True)

        def get(url: str) -> bytes:
            response = manager.request("GET", url, headers=headers)
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status}")
            return response.data

        return get
    import http.client

    parts = urllib.parse.urlsplit(urls[0])
    connections = threading.local()

    def get(url: str) -> bytes:
        if not hasattr(connections, "one"):
            connections.one = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        split = urllib.parse.urlsplit(url)
        connections.one.request("GET", f"{split.path}?{split.query}", headers=headers)
        response = connections.one.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status}")
        return body

    return get


def piece_http(client: str, folder: Path) -> dict[str, float]:
    urls = json.loads((folder / URLS).read_text())
    get = http_get(client, urls)
    started = time.process_time()
    fetched = fetch_all(urls, get)
    cpu = time.process_time() - started
    expected = sum(len(body) for body in saved_pages(folder))
    if fetched != expected:
        raise RuntimeError(f"{client} fetched {fetched:,} bytes, the saved pages hold {expected:,}")
    return {"cpu": cpu}


def taught_connector(folder: Path) -> LeadExecConnector:
    """A LeadExec connector whose known-fields reader knows the fields of page 0, as after a
    run's first page (no request is sent)."""
    from leadferry.connectors.plain_xml import plain_columns

    connector = leadexec_connector("http://127.0.0.1:1/")
    first = next(saved_pages(folder))
    plain = plain_columns(first, "Leads", "Lead", "Sends")
    connector.known.learn(plain.records, plain.children)
    # Column names come from dlt's naming convention, imported at the first name: an import,
    # not typing (a minimal script would not import dlt; leadferry's run pays it either way).
    for field in [*plain.records, *plain.children]:
        connector.names[field]
    return connector


def read_known(connector: LeadExecConnector, body: bytes) -> PlainColumns:
    columns = connector.known.read(body)
    if columns is None:
        raise RuntimeError("the known-fields reader refused a page: the floor would not be fair")
    return columns


def piece_parse(folder: Path) -> dict[str, float]:
    parser = taught_connector(folder).known._parser  # xml2arrow alone, without the proof
    cpu = 0.0
    for body in saved_pages(folder):
        started = time.process_time()
        parser.parse(body)
        cpu += time.process_time() - started
    return {"cpu": cpu}


def piece_reader(folder: Path) -> dict[str, float]:
    connector = taught_connector(folder)
    cpu = 0.0
    for body in saved_pages(folder):
        started = time.process_time()
        read_known(connector, body)
        cpu += time.process_time() - started
    return {"cpu": cpu}


def typed_pages(
    connector: LeadExecConnector, folder: Path
) -> Iterator[tuple[float, list[pa.RecordBatch]]]:
    """For each saved page: the CPU of typing its text columns, and its typed batches."""
    for body in saved_pages(folder):
        columns = read_known(connector, body)
        started = time.process_time()
        answer = connector._answer_of(columns)
        batches = [builder.build() for builder in (answer.leads, answer.sends) if builder.rows]
        yield time.process_time() - started, batches


def piece_typing(folder: Path) -> dict[str, float]:
    return {"cpu": sum(cpu for cpu, _ in typed_pages(taught_connector(folder), folder))}


def typed_tables(folder: Path) -> dict[str, pa.Table]:
    """The typed leads and sends of every saved page, one Arrow table each."""
    import pyarrow as pa

    leads, sends = [], []
    for _, batches in typed_pages(taught_connector(folder), folder):
        leads.append(batches[0])
        sends.extend(batches[1:])
    return {
        name: pa.concat_tables(
            [pa.Table.from_batches([batch]) for batch in batches], promote_options="default"
        )
        for name, batches in (("leads", leads), ("lead_sends", sends))
    }


def insert(database: Path, sources: dict[str, pa.Table | str], leads: int) -> None:
    """Create each table of *sources* (name -> an Arrow table, or a relation in SQL) in one
    transaction, 1 thread."""
    import duckdb

    warehouse = duckdb.connect(str(database), config={"threads": 1})
    warehouse.execute("begin")
    for name, source in sources.items():
        relation = source if isinstance(source, str) else f"{name}_arrow"
        if not isinstance(source, str):
            warehouse.register(relation, source)
        warehouse.execute(f"create table {name} as select * from {relation}")
    warehouse.execute("commit")
    rows = warehouse.execute("select count(*) from leads").fetchone()[0]
    warehouse.close()
    if rows != leads:
        raise RuntimeError(f"DuckDB holds {rows:,} leads of {leads:,}")


def piece_insert(folder: Path, database: Path) -> dict[str, float]:
    tables = typed_tables(folder)
    started = time.process_time()
    insert(database, dict(tables), tables["leads"].num_rows)
    return {"cpu": time.process_time() - started}


def through_files(
    folder: Path,
    database: Path,
    write: Callable[[Path, pa.Table], None],
    source: Callable[[Path], pa.Table | str],
) -> dict[str, float]:
    """The typed tables written to a file each by *write* in the load's chunks (dlt's writer gets
    one chunk a write: one row group), then inserted from what *source* makes of each file."""
    tables = typed_tables(folder)
    started = time.process_time()
    for name, table in tables.items():
        write(database.parent / name, table)
    sources = {name: source(database.parent / name) for name in tables}
    insert(database, sources, tables["leads"].num_rows)
    return {"cpu": time.process_time() - started}


def piece_parquet(folder: Path, database: Path) -> dict[str, float]:
    """The typed tables through Parquet files, as dlt's extract writes them for the load."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leadferry.destination import run_file_options
    from leadferry.run.load import LOAD_CHUNK_ROWS

    def write(path: Path, table: pa.Table) -> None:
        options = run_file_options(table.schema)
        with pq.ParquetWriter(f"{path}.parquet", table.schema, version="2.4", **options) as out:
            for chunk in table.to_batches(LOAD_CHUNK_ROWS):
                out.write_table(pa.Table.from_batches([chunk]))

    return through_files(folder, database, write, lambda path: f"read_parquet('{path}.parquet')")


def piece_ipc(folder: Path, database: Path) -> dict[str, float]:
    """The typed tables through uncompressed Arrow IPC files, memory-mapped for the insert."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from leadferry.run.load import LOAD_CHUNK_ROWS

    def write(path: Path, table: pa.Table) -> None:
        with ipc.new_file(f"{path}.arrow", table.schema) as out:
            for chunk in table.to_batches(LOAD_CHUNK_ROWS):
                out.write_batch(chunk)

    def read(path: Path) -> pa.Table:
        return ipc.open_file(pa.memory_map(f"{path}.arrow")).read_all()

    return through_files(folder, database, write, read)


def piece_connector(url: str) -> dict[str, float]:
    connector = leadexec_connector(url)
    started = time.process_time()
    rows = sum(
        len(item.batch)
        for item in connector.fetch(connector.report("leads"), {"lid": LID}, simulator_window())
        if item.table == "leads"
    )
    return {"cpu": time.process_time() - started, "rows": rows}


def run_piece(piece: str, folder: Path, url: str) -> None:
    if piece.startswith("http:"):
        figures = piece_http(piece.removeprefix("http:"), folder)
    elif piece == "parse":
        figures = piece_parse(folder)
    elif piece == "reader":
        figures = piece_reader(folder)
    elif piece == "typing":
        figures = piece_typing(folder)
    elif piece == "connector":
        figures = piece_connector(url)
    else:
        database = Path(os.environ["LEADFERRY_HOME"]) / "floor.duckdb"
        load = {"parquet": piece_parquet, "ipc": piece_ipc}.get(piece, piece_insert)
        figures = load(folder, database)
    print(json.dumps(figures))


# -- the parent ----------------------------------------------------------------------------------


class Pieces:
    """Runs each piece in a fresh process against one simulator."""

    def __init__(self, sim: Simulator, folder: Path, homes: Iterator[Path], rounds: int) -> None:
        self.sim, self.folder, self.homes, self.rounds = sim, folder, homes, rounds

    def measure(self, piece: str, label: str) -> Piece:
        cmd = [
            sys.executable, __file__, "--piece", piece, "--pages", str(self.folder),
            "--url", self.sim.url,
        ]  # fmt: skip
        cpu = []
        for _ in range(self.rounds):
            home = next(self.homes)
            home.mkdir(parents=True)
            run = measure(cmd, child_env(home), label, self.sim.proc.pid)
            cpu.append(json.loads(run.stdout.strip().splitlines()[-1])["cpu"])
        return Piece(label, cpu)

    def imports(self, client: str) -> Piece:
        """A whole process importing what a minimal script with *client* needs."""
        cmd = [sys.executable, "-c", f"import {client.replace('+', ', ')}, {MINIMAL_IMPORTS}"]
        cpu = []
        for _ in range(self.rounds):
            run = measure(cmd, child_env(next(self.homes)), "imports", self.sim.proc.pid)
            cpu.append(run.cpu)
        return Piece(f"imports ({client}, {MINIMAL_IMPORTS})", cpu)

    def all(self) -> Floor:
        http = [self.measure(f"http:{client}", f"HTTP: {client}") for client in HTTP_CLIENTS]
        fastest = min(http, key=lambda piece: piece.best)
        return Floor(
            http,
            parse=self.measure("parse", "xml2arrow parse only"),
            reader=self.measure("reader", "leadferry's reader (parse + proof)"),
            typing=self.measure("typing", "typing into the final Arrow schema"),
            insert=self.measure("insert", "DuckDB insert, 1 thread, 1 transaction"),
            parquet=self.measure("parquet", "the same through Parquet files (the load's way)"),
            ipc=self.measure("ipc", "the same through Arrow IPC files (uncompressed)"),
            imports=self.imports(fastest.name.removeprefix("HTTP: ")),
            connector=self.measure("connector", "leadferry's connector: HTTP + reader + typing"),
        )


@dataclass
class Floor:
    http: list[Piece]
    parse: Piece
    reader: Piece
    typing: Piece
    insert: Piece
    imports: Piece
    parquet: Piece
    """Not a floor piece: the insert through Parquet files, as leadferry's load goes."""
    ipc: Piece
    """Not a floor piece: the insert through Arrow IPC files, as a load without dlt could go."""
    connector: Piece
    """Not a floor piece: leadferry's own fetch, 4 page threads, to split its run in two."""

    @property
    def fastest_http(self) -> Piece:
        return min(self.http, key=lambda piece: piece.best)

    @property
    def bare(self) -> float:
        """The fastest HTTP client + parse + typing + insert + imports."""
        pieces = (self.fastest_http, self.parse, self.typing, self.insert, self.imports)
        return sum(piece.best for piece in pieces)

    @property
    def with_reader(self) -> float:
        """The bare floor with leadferry's reader (the parse and its proof) for the parse."""
        return self.bare - self.parse.best + self.reader.best


def best_runs(runs: list[Result]) -> Result:
    """One result of the least CPU, the least wall time and the highest peak seen."""
    return Result(
        runs[0].name,
        runs[0].rows,
        min(r.seconds for r in runs),
        max(r.peak_mb for r in runs),
        min(r.cpu for r in runs),
        min(r.server_cpu for r in runs),
    )


def target_line(what: str, figure: str, target: str, ok: bool, note: str) -> None:
    print(f"{what:<30} {figure:>8}   target {target:<10} {verdict(ok)}   ({note})")


def report(
    leads: int, floor: Floor, raw: list[Result], ferry: list[Result], small: Result | None
) -> None:
    per_million = 1_000_000 / leads
    client = floor.fastest_http.name.removeprefix("HTTP: ")
    rounds = len(floor.parse.cpu)
    print(f"\nfloor pieces, CPU s (user + sys) for {leads:,} leads; min of {rounds} rounds")
    print(f"{'piece':<62} {'min':>6} {'per 1M':>7}   rounds")
    pieces = [*floor.http, floor.parse, floor.reader, floor.typing, floor.insert, floor.imports]
    rows = [(piece.name, piece.best, piece.cpu) for piece in pieces]
    rows += [
        (f"bare floor: {client} + parse + typing + insert + imports", floor.bare, []),
        ("floor with leadferry's reader instead of parse", floor.with_reader, []),
        (floor.parquet.name, floor.parquet.best, floor.parquet.cpu),
        (floor.ipc.name, floor.ipc.best, floor.ipc.cpu),
        (floor.connector.name, floor.connector.best, floor.connector.cpu),
    ]
    for name, cpu, each in rows:
        figures = " ".join(f"{one:.2f}" for one in each)
        print(f"{name:<62} {cpu:>6.2f} {cpu * per_million:>7.2f}   {figures}")

    print(
        f"\n{'contender':<22} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS MB':>12} "
        f"{'CPU s':>7} {'simulator CPU s':>16}"
    )
    for r in [*raw, *ferry, *([small] if small else [])]:
        print(
            f"{r.name:<22} {r.rows:>10,} {r.seconds:>8.1f} {r.rate:>9,.0f} {r.peak_mb:>12.0f} "
            f"{r.cpu:>7.2f} {r.server_cpu:>16.1f}"
        )
    big, fetch = best_runs(ferry), best_runs(raw)
    print(
        f"(the ratios take the least CPU and the least wall time of {len(ferry)} runs each; "
        f"leadferry run beyond its connector: {big.cpu - floor.connector.best:.2f} CPU s)\n"
    )
    over = big.cpu / floor.bare
    target_line(
        "leadferry CPU / floor CPU",
        f"{over:.2f}",
        f"<= {TARGET_FLOOR:.2f}",
        over <= TARGET_FLOOR,
        f"{big.cpu:.2f} / {floor.bare:.2f} CPU s; {big.cpu / floor.with_reader:.2f} against "
        "the floor with leadferry's reader",
    )
    share = big.rate / fetch.rate
    target_line(
        "leadferry rate / raw fetch",
        f"{share:.2f}",
        f">= {TARGET_RAW:.2f}",
        share >= TARGET_RAW,
        f"{big.rate:,.0f} / {fetch.rate:,.0f} rows/s",
    )
    sizes = [big, *([small] if small else [])]
    highest = max(r.peak_mb for r in sizes)
    target_line(
        "leadferry peak RSS",
        f"{highest:.0f} MB",
        f"<= {TARGET_RSS_MB:.0f} MB",
        highest <= TARGET_RSS_MB,
        ", ".join(f"{r.peak_mb:.0f} MB at {r.rows:,} leads" for r in sizes),
    )
    if small:
        ratio = big.peak_mb / small.peak_mb
        target_line(
            f"peak RSS {big.rows:,} / {small.rows:,}",
            f"{ratio:.2f}",
            f"1 +- {TARGET_RSS_SPREAD:.0%}",
            abs(ratio - 1) <= TARGET_RSS_SPREAD,
            f"{small.peak_mb:.0f} MB -> {big.peak_mb:.0f} MB",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000, help="N, leads to sync.")
    parser.add_argument(
        "--small", type=int, default=100_000, help="Second leadferry size, for memory (0: skip)."
    )
    parser.add_argument("--rounds", type=int, default=3, help="Runs of every piece and contender.")
    parser.add_argument("--piece", help=argparse.SUPPRESS)
    parser.add_argument("--pages", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.piece:
        run_piece(args.piece, args.pages, args.url)
        return

    print(f"machine: {machine()}")
    print(f"started {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average "
          f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}")  # fmt: skip
    print(f"simulator: {args.leads:,} leads over {SIM_DAYS} days, lid {LID}; pages of {PAGE}, "
          f"{CONCURRENCY} at a time")  # fmt: skip
    scratch = Path(tempfile.mkdtemp(prefix="leadferry-floor-"))
    homes = (scratch / f"home{i}" for i in range(10_000))
    try:
        print("warming up (bytecode, and a check that every piece works) ...", flush=True)
        with Simulator(2 * PAGE) as sim:
            folder = scratch / "warm-pages"
            folder.mkdir()
            save_pages(sim.url, 2 * PAGE, folder)
            Pieces(sim, folder, homes, 1).all()
            run_raw(sim, 2 * PAGE, next(homes))
            run_leadferry(sim, 2 * PAGE, next(homes), {})
        small = None
        if args.small:
            with Simulator(args.small) as sim:
                print(f"leadferry at {args.small:,} leads ...", flush=True)
                small = run_leadferry(sim, args.small, next(homes), {}, "leadferry (small N)")
        with Simulator(args.leads) as sim:
            folder = scratch / "pages"
            folder.mkdir()
            print(f"saving the {args.leads:,} leads' pages ...", flush=True)
            save_pages(sim.url, args.leads, folder)
            print("the floor pieces ...", flush=True)
            floor = Pieces(sim, folder, homes, args.rounds).all()
            raw, ferry = [], []
            for _ in range(args.rounds):  # alternating, so that both share the machine's moods
                print("raw fetch, then leadferry run ...", flush=True)
                raw.append(run_raw(sim, args.leads, next(homes)))
                ferry.append(run_leadferry(sim, args.leads, next(homes), {}))
        print(f"\ncommand: uv run python bench/bench_floor.py {shlex.join(sys.argv[1:])}".rstrip())
        print(f"finished {dt.datetime.now(dt.UTC):%H:%M} UTC, load average "
              f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}")  # fmt: skip
        report(args.leads, floor, raw, ferry, small)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
