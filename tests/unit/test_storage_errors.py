"""storage_errors: a failure to reach the database is a 503 that says nothing was written only when that is certain."""
from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from pynamodb.exceptions import (
    DeleteError,
    GetError,
    PutError,
    QueryError,
    TransactGetError,
    TransactWriteError,
    UpdateError,
)

from chalicelib.domain.errors import Unavailable
from chalicelib.handlers.errors import status_of
from chalicelib.tables.errors import NOTHING_WRITTEN, OUTCOME_UNKNOWN, storage_errors

URL = "http://127.0.0.1:8001/"


def client_error(code: str, status: int, operation: str = "PutItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)


def answer_to(exc: Exception) -> Unavailable:
    with pytest.raises(Unavailable) as raised, storage_errors():
        raise exc
    assert raised.value.code == "unavailable" and status_of(raised.value) == 503
    return raised.value


@pytest.mark.parametrize("wrapper", [PutError, UpdateError, DeleteError, TransactWriteError])
@pytest.mark.parametrize("lost", [ReadTimeoutError(endpoint_url=URL), ConnectionClosedError(endpoint_url=URL)])
def test_a_write_sent_without_an_answer_has_an_unknown_outcome(wrapper, lost):
    assert answer_to(wrapper("failed", lost)).message == OUTCOME_UNKNOWN


@pytest.mark.parametrize("wrapper", [PutError, UpdateError, DeleteError, TransactWriteError])
@pytest.mark.parametrize("unsent", [EndpointConnectionError(endpoint_url=URL), ConnectTimeoutError(endpoint_url=URL),
                                    NoCredentialsError()])
def test_a_write_that_never_reached_the_database_wrote_nothing(wrapper, unsent):
    assert answer_to(wrapper("failed", unsent)).message == NOTHING_WRITTEN


@pytest.mark.parametrize("wrapper", [GetError, QueryError, TransactGetError])
@pytest.mark.parametrize("cause", [ReadTimeoutError(endpoint_url=URL), EndpointConnectionError(endpoint_url=URL)])
def test_a_read_that_got_no_answer_wrote_nothing(wrapper, cause):
    assert answer_to(wrapper("failed", cause)).message == NOTHING_WRITTEN


def test_transactions_losing_their_connection_are_503_not_500():
    assert answer_to(TransactWriteError("failed", ReadTimeoutError(endpoint_url=URL))).message == OUTCOME_UNKNOWN
    assert answer_to(TransactGetError("failed", ConnectionClosedError(endpoint_url=URL))).message == NOTHING_WRITTEN


def test_a_write_whose_earlier_attempt_may_have_landed_is_unknown_though_the_last_never_connected():
    refused = EndpointConnectionError(endpoint_url=URL)
    refused.outcome_unknown = True  # the connection's verdict over every attempt of the call (connection.py)
    assert answer_to(PutError("failed", refused)).message == OUTCOME_UNKNOWN


def test_a_server_error_after_the_retries_leaves_a_write_unknown_and_throttling_wrote_nothing():
    assert answer_to(PutError("failed", client_error("InternalServerError", 500))).message == OUTCOME_UNKNOWN
    assert answer_to(PutError("failed", client_error("ProvisionedThroughputExceededException", 400))).message \
        == NOTHING_WRITTEN


@pytest.mark.parametrize("answer", [
    PutError("failed", client_error("ConditionalCheckFailedException", 400)),
    TransactWriteError("failed", client_error("TransactionCanceledException", 400, "TransactWriteItems")),
    GetError("failed", client_error("ValidationException", 400, "GetItem")),
])
def test_an_answer_of_the_database_is_left_to_the_repository(answer):
    with pytest.raises(type(answer)), storage_errors():
        raise answer
