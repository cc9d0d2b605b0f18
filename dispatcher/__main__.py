from dispatcher.cli import app

app()
