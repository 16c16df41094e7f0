"""Runs one SQL query against a Tianshan node's Arrow Flight SQL endpoint with the ADBC Flight SQL
driver, as an analyst's tool would, and prints the answer for the integration test
tests/it/flight_sql.rs to check.

Usage: query.py URI TOKEN|- QUERY

Prints the column names, then one line per row, values separated by commas (CSV without
quoting), and exits 0. When the driver reports an error it prints `error: <class>: <message>`
on stdout and exits 3. Without pyarrow or the driver it exits 2 with the pip line to run.
"""

import sys

try:
    import adbc_driver_flightsql.dbapi as flight_sql
    from adbc_driver_flightsql import DatabaseOptions
    import pyarrow  # noqa: F401  (the driver hands answers over as pyarrow tables)
except ImportError as missing:
    print(
        f"missing Python package ({missing}); install the pinned ones: python3 -m pip install "
        "'adbc-driver-flightsql==1.13.0' 'pyarrow==26.0.1'",
        file=sys.stderr,
    )
    sys.exit(2)


def main() -> int:
    uri, token, query = sys.argv[1], sys.argv[2], sys.argv[3]
    options = {}
    if token != "-":
        options[DatabaseOptions.AUTHORIZATION_HEADER.value] = f"Bearer {token}"
    try:
        with flight_sql.connect(uri, db_kwargs=options) as connection:
            with connection.cursor() as cursor:
                cursor.execute(query)
                table = cursor.fetch_arrow_table()
    except Exception as error:  # the driver's errors are DB-API classes; report any
        print(f"error: {type(error).__name__}: {error}")
        return 3
    print(",".join(table.column_names))
    for row in table.to_pylist():
        print(",".join(str(row[name]) for name in table.column_names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
