"""Asks a Tianshan node's Arrow Flight SQL endpoint with the ADBC Flight SQL driver, as an
analyst's tool would, and prints the answer for the integration test tests/it/flight_sql.rs to
check.

Usage: query.py URI TOKEN|- QUERY [VALUE ...]
       query.py URI TOKEN|- --objects
       query.py URI TOKEN|- --table-schema TABLE

With QUERY it runs the query and prints the column names, then one line per row, values
separated by commas (CSV without quoting). VALUEs after QUERY are bound to its placeholders in
order, which makes the driver prepare the statement (CreatePreparedStatement, DoPut of the
values, GetFlightInfo and DoGet on the handle): a VALUE that reads as an integer is bound as a
64-bit integer, any other as text. With --objects it browses the catalog as a database
tool does (`adbc_get_objects`, which asks GetCatalogs, GetDbSchemas and GetTables with the
tables' schemas) and prints one line per table, `catalog.schema.table TYPE: col1,col2,...`,
columns in their ordinal order. With --table-schema it prints the field names of TABLE's Arrow
schema (`adbc_get_table_schema`), separated by commas. It exits 0 after printing. When the
driver reports an error it prints `error: <class>: <message>` on stdout and exits 3. Without
pyarrow or the driver it exits 2 with the pip line to run.
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


def parameter(value: str):
    try:
        return int(value)
    except ValueError:
        return value


def run_query(connection, query: str, values: list[str]) -> list[str]:
    with connection.cursor() as cursor:
        if values:
            cursor.execute(query, parameters=tuple(parameter(v) for v in values))
        else:
            cursor.execute(query)
        table = cursor.fetch_arrow_table()
    lines = [",".join(table.column_names)]
    for row in table.to_pylist():
        lines.append(",".join(str(row[name]) for name in table.column_names))
    return lines


def list_objects(connection) -> list[str]:
    # ADBC's GetObjects layout: catalogs, each with its schemas, each with its tables, each
    # with its columns.
    lines = []
    for catalog in connection.adbc_get_objects(depth="all").read_all().to_pylist():
        for schema in catalog["catalog_db_schemas"] or []:
            for table in schema["db_schema_tables"] or []:
                columns = sorted(table["table_columns"] or [], key=lambda c: c["ordinal_position"])
                name = f'{catalog["catalog_name"]}.{schema["db_schema_name"]}.{table["table_name"]}'
                lines.append(
                    f'{name} {table["table_type"]}: '
                    + ",".join(column["column_name"] for column in columns)
                )
    return lines


def table_schema(connection, table: str) -> list[str]:
    return [",".join(connection.adbc_get_table_schema(table).names)]


def main() -> int:
    uri, token, what = sys.argv[1], sys.argv[2], sys.argv[3]
    options = {}
    if token != "-":
        options[DatabaseOptions.AUTHORIZATION_HEADER.value] = f"Bearer {token}"
    try:
        with flight_sql.connect(uri, db_kwargs=options) as connection:
            if what == "--objects":
                lines = list_objects(connection)
            elif what == "--table-schema":
                lines = table_schema(connection, sys.argv[4])
            else:
                lines = run_query(connection, what, sys.argv[4:])
    except Exception as error:  # the driver's errors are DB-API classes; report any
        print(f"error: {type(error).__name__}: {error}")
        return 3
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
