"""Policy inference: the compiled-model contract, the TorchScript bridge and the policy back-ends.

``make_inference_policy(actor_critic, obs_space, backend=...)`` returns an object with
``forward(obs, rnn_states, deterministic) -> (outputs, policy_version)`` and
``update_weights(model_or_state, version)``, run natively (``torchscript``, default) or eagerly (``python``).
"""
