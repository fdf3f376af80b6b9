"""`python -m devtools.sandbox`: the sandbox Bot API server on its own."""

from devtools.sandbox.standalone import main

if __name__ == "__main__":  # importing this module must not parse anyone's command line
    main()
