"""The ``kolmo`` command line (typer + rich): parse, call one package function, print."""
