"""`python -m bot.sandbox`: the sandbox Bot API server on its own."""

from bot.sandbox.standalone import main

main()
