"""The least a 100-lead run needs, as a fresh process: bench_runs.py's baseline (a).

    python bench/minimal_run.py URL DATABASE

Fetches one page of leads with http.client, reads it with the standard library's ElementTree
and inserts the leads into a DuckDB table of text columns. It imports nothing else, so that its
CPU is what loading the page costs with nothing around it.
"""

import http.client
import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET

import duckdb


def main(url: str, database: str) -> None:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)
    connection.request("GET", f"{parts.path}?{parts.query}", headers={"Accept": "application/xml"})
    body = connection.getresponse().read()
    connection.close()
    leads = [{field.tag: field.text for field in lead} for lead in ET.fromstring(body)]
    columns = sorted({name for lead in leads for name in lead if name != "Sends"})
    warehouse = duckdb.connect(database)
    typed = ", ".join(f'"{name}" varchar' for name in columns)
    warehouse.execute(f"create or replace table leads ({typed})")
    row = f"({', '.join('?' for _ in columns)})"
    quoted = ", ".join(f'"{name}"' for name in columns)
    warehouse.execute(  # one statement: executemany would run one per lead
        f"insert into leads ({quoted}) values {', '.join(row for _ in leads)}",
        [lead.get(name) for lead in leads for name in columns],
    )
    warehouse.close()
    print(json.dumps({"rows": len(leads)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
