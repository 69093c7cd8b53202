"""The floor: a bare Django async view returning a constant chat completion.

bench/runtime.py serves it with the same daphne, flags and client as the app and prints
every target as a ratio to it. It is a package of bench/ only: daphne runs it from
bench/ (as `floor.asgi:application`, settings `floor.settings`), so the project's root
is not on its path and nothing of the product is importable from it, nor it from them.
"""
