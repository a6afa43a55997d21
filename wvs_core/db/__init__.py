"""The WVS database: tables, engine, and the queries of the control and scheduling planes."""
