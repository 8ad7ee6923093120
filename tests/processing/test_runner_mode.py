"""Which processors may run in the child process: only those its factory rebuilds exactly."""

from __future__ import annotations

from engagehub import registry
from engagehub.processing.log_index import LogIndex
from engagehub.processing.runner import ProcessorRunner
from engagehub.settings import Settings
from engagehub.storage import Database


class Custom:
    """A processor the registry does not know (tests, plugins): stays on a thread."""

    name = "custom"

    def apply(self, conn: object, events: object) -> None:
        """Nothing."""


def test_child_process_only_with_a_factory_that_rebuilds_the_processors(db: Database) -> None:
    settings = Settings(processor_mode="process")
    procs = registry.processors(settings)
    factory = registry.processors
    assert ProcessorRunner(db, procs, settings, factory=factory).mode == "process"
    assert ProcessorRunner(db, procs[:2], settings, factory=factory).mode == "process"
    # without a factory the child could not rebuild them
    assert ProcessorRunner(db, procs, settings).mode == "thread"
    # not a prefix of what the factory builds / not ours
    assert ProcessorRunner(db, procs[1:], settings, factory=factory).mode == "thread"
    custom = [LogIndex(), Custom()]
    assert ProcessorRunner(db, custom, settings, factory=factory).mode == "thread"
    # the setting still decides when it may
    thread = Settings(processor_mode="thread")
    assert ProcessorRunner(db, procs, thread, factory=factory).mode == "thread"
