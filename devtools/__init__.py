"""Tools the tests, benchmarks and scripts share: the one uvicorn launcher, waits, the HTTP demo
shop, browser helpers, direct database set-up and the import checker.

A package of its own (not ``tests/`` or ``bench/``) so that benchmarks and scripts never import
test modules and tests never import benchmarks. No product package imports it; it talks to the
shop over HTTP and the ``storeloop`` command line, except ``shop_db`` (set-up rows written
straight to the tables, for tests and benchmarks only).
"""
