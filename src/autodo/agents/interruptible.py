"""A model whose in-flight request the person can cut short (`autodo say --mode interrupt`, pause)."""

from __future__ import annotations

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from autodo.runs import signals


class InterruptibleModel(WrapperModel):
    """Races each request against the run's stop signal.

    It sits inside DBOS's model step, so an interrupted request is recorded as that step's error
    and a replay takes the same path instead of asking the model again.
    """

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        work = super().request(messages, model_settings, model_request_parameters)
        signal = signals.current()
        if signal is None:
            return await work
        return await signal.race(work)
