//! [`FusedOps`] under autodiff: each fused op records its own backward step.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;

use super::FusedOps;

#[derive(Debug)]
struct GeluBackward;

impl<B: FusedOps> Backward<B, 1> for GeluBackward {
    type State = NodeId;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state);
        if let Some(parent) = parent {
            grads.register::<B>(parent.id, B::fused_gelu_backward(x, grad));
        }
    }
}

impl<B: FusedOps, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GeluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, B::fused_gelu(x.primitive().clone()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_gelu(x.into_primitive())),
        }
    }

    fn fused_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        match LinearBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let out = B::fused_linear(x.primitive().clone(), weight.primitive().clone(), bias.into_primitive());
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_linear(x.into_primitive(), weight.into_primitive(), bias.into_primitive()))
            }
        }
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        match LayerNormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&gamma), eps);
                let out =
                    B::fused_layer_norm(x.primitive().clone(), gamma.primitive().clone(), beta.into_primitive(), eps);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_layer_norm(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), eps))
            }
        }
    }

    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f64,
    ) -> FloatTensor<Self> {
        match AttentionBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let ids = (prep.checkpoint(&q), prep.checkpoint(&k), prep.checkpoint(&v));
                let (out, probs) =
                    B::fused_attention_with_probs(q.into_primitive(), k.into_primitive(), v.into_primitive(), scale);
                prep.finish((ids, probs, scale), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_attention(q.into_primitive(), k.into_primitive(), v.into_primitive(), scale))
            }
        }
    }
}

#[derive(Debug)]
struct LinearBackward;

impl<B: FusedOps> Backward<B, 3> for LinearBackward {
    /// The input and the weight.
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [x_parent, weight_parent, bias_parent] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_id, weight_id) = ops.state;
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_id);
        let weight: FloatTensor<B> = checkpointer.retrieve_node_output(weight_id);
        if let Some(parent) = bias_parent {
            grads.register::<B>(parent.id, B::fused_linear_backward_bias(grad.clone()));
        }
        let grad = B::fused_linear_grad_operand(grad);
        if let Some(parent) = weight_parent {
            grads.register::<B>(parent.id, B::fused_linear_backward_weight(x, grad.clone()));
        }
        if let Some(parent) = x_parent {
            grads.register::<B>(parent.id, B::fused_linear_backward_input(weight, grad));
        }
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl<B: FusedOps> Backward<B, 3> for LayerNormBackward {
    /// The input, gamma and epsilon.
    type State = (NodeId, NodeId, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [x_parent, gamma_parent, beta_parent] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_id, gamma_id, eps) = ops.state;
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_id);
        let gamma: FloatTensor<B> = checkpointer.retrieve_node_output(gamma_id);
        let (dx, dgamma, dbeta) = B::fused_layer_norm_backward(x, gamma, grad, eps);
        if let Some(parent) = x_parent {
            grads.register::<B>(parent.id, dx);
        }
        if let Some(parent) = gamma_parent {
            grads.register::<B>(parent.id, dgamma);
        }
        if let Some(parent) = beta_parent {
            grads.register::<B>(parent.id, dbeta);
        }
    }
}

#[derive(Debug)]
struct AttentionBackward;

impl<B: FusedOps> Backward<B, 3> for AttentionBackward {
    /// Query, key and value, the attention probabilities, and the scale.
    type State = ((NodeId, NodeId, NodeId), FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [q_parent, k_parent, v_parent] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let ((q_id, k_id, v_id), probs, scale) = ops.state;
        let q: FloatTensor<B> = checkpointer.retrieve_node_output(q_id);
        let k: FloatTensor<B> = checkpointer.retrieve_node_output(k_id);
        let v: FloatTensor<B> = checkpointer.retrieve_node_output(v_id);
        let (dq, dk, dv) = B::fused_attention_backward(q, k, v, probs, grad, scale);
        for (parent, grad) in [(q_parent, dq), (k_parent, dk), (v_parent, dv)] {
            if let Some(parent) = parent {
                grads.register::<B>(parent.id, grad);
            }
        }
    }
}
