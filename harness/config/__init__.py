"""Configuration: strict TOML reading into frozen dataclasses (`parse`), the checks every config gets
(`guards`: names, regexes, secrets) and every settings table in one place (`settings`, composed by
`SuiteConfig`).

May import only harness.core. Subsystems import their settings from here, never the reverse.
"""
