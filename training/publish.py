"""Make a trained model a Hugging Face Hub repository: `python training/publish.py outputs/demo --repo-id ORG/NAME
[--push]`. What the folder holds and how it is verified is documented in `modeling_twrvae/commands/publish.py`
(`--help`) and docs/publishing.md."""

from modeling_twrvae.commands.publish import cli

if __name__ == "__main__":
    cli()
