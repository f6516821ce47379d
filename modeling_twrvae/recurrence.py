"""Exact LSTM cell states of every timestep without stepping `nn.LSTM` token by token.

`nn.LSTM` returns the hidden state h_t of every timestep but the cell state c_t of the last one only, and HR-VAE's
posterior reads [h_t; c_t] at every t. Two exact ways, each the same function of the weights as stepping the cell
(equal up to float rounding, so their gradients are exact too):

- scan (for GPUs): one fused `nn.LSTM` call gives every h_t; every gate then depends only on x_t and h_{t-1}, so all
  gates come from two batched matrix products, and c_t = f_t * c_{t-1} + i_t * g_t is a first-order linear
  recurrence that an associative scan solves in ceil(log2 T) vectorised steps. It recomputes the gates, which costs
  little where matrix products are cheap and the per-step launches of a loop are what is slow.
- unrolled (for CPUs): the input projection of all timesteps in one matrix product, then one recurrent product and
  a few element-wise operations per step. Every product is computed once, as `nn.LSTM` does internally, without
  the per-call work of stepping the module; on a CPU, where the products dominate, this is the cheaper way.

`benchmarks/cell_states.py` measures both against stepping.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def linear_recurrence(decay: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """c_t = decay_t * c_{t-1} + inputs_t along dimension 1, with c_0 = 0 (a Hillis-Steele inclusive scan).

    Element t stands for the affine map c -> decay_t * c + inputs_t; composing each element with the one `step`
    places earlier, for step = 1, 2, 4, ..., leaves at t the composition of all maps up to t.
    """
    length = decay.shape[1]
    step = 1
    while step < length:
        inputs = torch.cat([inputs[:, :step], decay[:, step:] * inputs[:, :-step] + inputs[:, step:]], dim=1)
        decay = torch.cat([decay[:, :step], decay[:, step:] * decay[:, :-step]], dim=1)
        step *= 2
    return inputs


def lstm_cell_states(lstm: nn.LSTM, inputs: torch.Tensor, hidden_states: torch.Tensor) -> torch.Tensor:
    """The cell states c_1..c_T of a one-layer, unidirectional, batch-first `nn.LSTM` started from zero state.

    Args:
        lstm: the layer that produced `hidden_states` from `inputs`.
        inputs: (batch, time, input_size), what the layer read.
        hidden_states: (batch, time, hidden_size), the layer's output h_1..h_T.
    """
    _check_layer(lstm)
    previous_hidden = F.pad(hidden_states[:, :-1], (0, 0, 1, 0))
    gates = F.linear(inputs, lstm.weight_ih_l0, lstm.bias_ih_l0) + F.linear(
        previous_hidden, lstm.weight_hh_l0, lstm.bias_hh_l0
    )
    input_gate, forget_gate, candidate, _ = gates.chunk(4, dim=-1)
    return linear_recurrence(torch.sigmoid(forget_gate), torch.sigmoid(input_gate) * torch.tanh(candidate))


def lstm_states_unrolled(lstm: nn.LSTM, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(h_1..h_T, c_1..c_T) of a one-layer, batch-first `nn.LSTM` from zero state, each product computed once."""
    _check_layer(lstm)
    projected = F.linear(inputs, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)
    zeros = inputs.new_zeros(inputs.shape[0], lstm.hidden_size)
    return lstm_recurrence(projected, lstm.weight_hh_l0, zeros, zeros)


def lstm_recurrence(
    projected: torch.Tensor, weight_hh: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(h_1..h_T, c_1..c_T) of one LSTM layer given its input projection at every step.

    Args:
        projected: (batch, time, 4 * hidden_size), W_ih x_t + b_ih + b_hh (gate order i, f, g, o as in `nn.LSTM`).
        weight_hh: (4 * hidden_size, hidden_size), the layer's recurrent weight.
        hidden, cell: (batch, hidden_size), the state before the first step.
    """
    size = weight_hh.shape[1]
    recurrent = weight_hh.t()
    hiddens, cells = [], []
    for t in range(projected.shape[1]):
        gates = torch.addmm(projected[:, t], hidden, recurrent)
        input_gate, forget_gate = torch.sigmoid(gates[:, : 2 * size]).chunk(2, dim=1)
        cell = forget_gate * cell + input_gate * torch.tanh(gates[:, 2 * size : 3 * size])
        hidden = torch.sigmoid(gates[:, 3 * size :]) * torch.tanh(cell)
        hiddens.append(hidden)
        cells.append(cell)
    return torch.stack(hiddens, dim=1), torch.stack(cells, dim=1)


def lstm_hidden_and_cell_states(lstm: nn.LSTM, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(h_1..h_T, c_1..c_T) of a one-layer, batch-first `nn.LSTM`: the scan on accelerators, unrolled on CPU."""
    if inputs.device.type == "cpu":
        return lstm_states_unrolled(lstm, inputs)
    hidden, _ = lstm(inputs)
    return hidden, lstm_cell_states(lstm, inputs, hidden)


def lstm_cell_states_stepwise(lstm: nn.LSTM, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: step the layer one token at a time and collect (h_1..h_T, c_1..c_T). Slow; for tests and benchmarks."""
    batch, length, _ = inputs.shape
    state = (
        inputs.new_zeros(1, batch, lstm.hidden_size),
        inputs.new_zeros(1, batch, lstm.hidden_size),
    )
    hiddens, cells = [], []
    for t in range(length):
        _, state = lstm(inputs[:, t : t + 1], state)
        hiddens.append(state[0][0])
        cells.append(state[1][0])
    return torch.stack(hiddens, dim=1), torch.stack(cells, dim=1)


# Batch sizes up to which a one-token step through the cell functions beat the module on a 2-core CPU (measured for
# LSTM and GRU layers at the papers' sizes: at batch 1 the LSTM module took 0.61 ms a step, its cell 0.14 ms).
_CELL_STEP_MAX_BATCH = 32
_CELL_FUNCTIONS = {"LSTM": torch.lstm_cell, "GRU": torch.gru_cell}


def run_rnn(rnn: nn.RNNBase, inputs: torch.Tensor, state):
    """`rnn(inputs, state)`, with the one-token steps of generation on a CPU run through `torch.lstm_cell` /
    `torch.gru_cell`: a module call pays a fixed oneDNN set-up cost (about 0.5 ms) that exceeds a small batch's
    arithmetic. Same function of the weights, equal up to float rounding. Anything else goes to the module."""
    if not (
        state is not None
        and inputs.shape[1] == 1
        and inputs.shape[0] <= _CELL_STEP_MAX_BATCH
        and inputs.device.type == "cpu"
        and rnn.mode in _CELL_FUNCTIONS
        and rnn.batch_first
        and rnn.bias
        and not rnn.bidirectional
        and not getattr(rnn, "proj_size", 0)
        and not (rnn.training and rnn.dropout > 0 and rnn.num_layers > 1)
        and not torch.is_autocast_enabled("cpu")
    ):
        return rnn(inputs, state)
    cell = _CELL_FUNCTIONS[rnn.mode]
    is_lstm = rnn.mode == "LSTM"
    layer_input = inputs[:, 0]
    hiddens, cells = [], []
    for layer in range(rnn.num_layers):
        weights = [getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        if is_lstm:
            hidden, memory = cell(layer_input, (state[0][layer], state[1][layer]), *weights)
            cells.append(memory)
        else:
            hidden = cell(layer_input, state[layer], *weights)
        hiddens.append(hidden)
        layer_input = hidden
    new_state = (torch.stack(hiddens), torch.stack(cells)) if is_lstm else torch.stack(hiddens)
    return layer_input.unsqueeze(1), new_state


def _check_layer(lstm: nn.LSTM) -> None:
    if lstm.num_layers != 1 or lstm.bidirectional or not lstm.batch_first or lstm.proj_size or not lstm.bias:
        raise ValueError("Needs a one-layer, unidirectional, batch-first nn.LSTM with biases and no projection.")


__all__ = [
    "linear_recurrence",
    "lstm_cell_states",
    "lstm_cell_states_stepwise",
    "lstm_hidden_and_cell_states",
    "lstm_recurrence",
    "lstm_states_unrolled",
    "run_rnn",
]
