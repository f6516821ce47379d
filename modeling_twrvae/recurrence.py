"""Exact LSTM cell states of every timestep without stepping the LSTM token by token.

`nn.LSTM` returns the hidden state h_t of every timestep but the cell state c_t of the last one only, and HR-VAE's
posterior reads [h_t; c_t] at every t. Given the h_t that `nn.LSTM` computed (one fused call), every gate of every
timestep depends only on x_t and h_{t-1}, so all gates come from two batched matrix products. What is left,
c_t = f_t * c_{t-1} + i_t * g_t, is a first-order linear recurrence: an associative scan computes it in
ceil(log2 T) vectorised steps. The result is the same function of the weights as stepping the cell (equal up to
float rounding), so its gradients are exact too.
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
    if lstm.num_layers != 1 or lstm.bidirectional or not lstm.batch_first or lstm.proj_size:
        raise ValueError("lstm_cell_states needs a one-layer, unidirectional, batch-first nn.LSTM without projection.")
    previous_hidden = F.pad(hidden_states[:, :-1], (0, 0, 1, 0))
    gates = F.linear(inputs, lstm.weight_ih_l0, lstm.bias_ih_l0) + F.linear(
        previous_hidden, lstm.weight_hh_l0, lstm.bias_hh_l0
    )
    input_gate, forget_gate, candidate, _ = gates.chunk(4, dim=-1)
    return linear_recurrence(torch.sigmoid(forget_gate), torch.sigmoid(input_gate) * torch.tanh(candidate))


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


__all__ = ["linear_recurrence", "lstm_cell_states", "lstm_cell_states_stepwise"]
