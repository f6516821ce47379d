import pytest
import torch
from torch import nn

from modeling_twrvae.recurrence import (
    linear_recurrence,
    lstm_cell_states,
    lstm_cell_states_stepwise,
    lstm_hidden_and_cell_states,
    lstm_states_unrolled,
)


@pytest.mark.parametrize("length", [1, 2, 3, 7, 8, 33])
def test_linear_recurrence_equals_the_loop(length):
    torch.manual_seed(length)
    decay, inputs = torch.rand(4, length, 5, dtype=torch.float64), torch.randn(4, length, 5, dtype=torch.float64)
    state, expected = torch.zeros(4, 5, dtype=torch.float64), []
    for t in range(length):
        state = decay[:, t] * state + inputs[:, t]
        expected.append(state)
    torch.testing.assert_close(linear_recurrence(decay, inputs), torch.stack(expected, dim=1))


@pytest.mark.parametrize("length", [1, 5, 64])
def test_lstm_cell_states_equal_stepping_the_lstm(length):
    torch.manual_seed(0)
    lstm = nn.LSTM(10, 16, batch_first=True)
    inputs = torch.randn(3, length, 10)
    hidden, (_, last_cell) = lstm(inputs)
    cells = lstm_cell_states(lstm, inputs, hidden)
    step_hidden, step_cells = lstm_cell_states_stepwise(lstm, inputs)
    torch.testing.assert_close(hidden, step_hidden, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cells, step_cells, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cells[:, -1], last_cell[0], rtol=1e-5, atol=1e-5)
    for method in (lstm_states_unrolled, lstm_hidden_and_cell_states):
        other_hidden, other_cells = method(lstm, inputs)
        torch.testing.assert_close(other_hidden, step_hidden, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(other_cells, step_cells, rtol=1e-5, atol=1e-5)


def scan_states(lstm, inputs):
    hidden, _ = lstm(inputs)
    return hidden, lstm_cell_states(lstm, inputs, hidden)


@pytest.mark.parametrize("method", [scan_states, lstm_states_unrolled])
def test_lstm_state_gradients_equal_stepping(method):
    torch.manual_seed(1)
    lstm = nn.LSTM(6, 8, batch_first=True)
    inputs = torch.randn(2, 12, 6, requires_grad=True)
    weights = torch.randn(2, 2, 12, 8)

    def grads(function):
        lstm.zero_grad()
        inputs.grad = None
        hidden, cells = function(lstm, inputs)
        (hidden * weights[0] + cells * weights[1]).sum().backward()
        return [p.grad.clone() for p in lstm.parameters()] + [inputs.grad.clone()]

    for fast, step in zip(grads(method), grads(lstm_cell_states_stepwise), strict=True):
        torch.testing.assert_close(fast, step, rtol=1e-4, atol=1e-5)


def test_rejects_layers_it_cannot_handle():
    with pytest.raises(ValueError, match="one-layer, unidirectional"):
        lstm_cell_states(nn.LSTM(4, 4, num_layers=2, batch_first=True), torch.randn(1, 2, 4), torch.randn(1, 2, 4))
    with pytest.raises(ValueError, match="one-layer, unidirectional"):
        lstm_states_unrolled(nn.LSTM(4, 4, batch_first=False), torch.randn(1, 2, 4))
