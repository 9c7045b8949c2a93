"""`chorus stack`: placeholder replaced below."""
import click
@click.group()
def stack() -> None:
    """Local Kafka broker and Redis server."""
