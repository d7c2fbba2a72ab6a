//! Burn's `Linear` and `LayerNorm` as modules that run the fused CPU kernels of
//! [`crate::kernels`] where they can: same parameters, same record paths, same results.

mod layer_norm;
mod linear;

pub use layer_norm::FusedLayerNorm;
pub use linear::FusedLinear;

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{LayerNormConfig, LinearConfig};
    use burn::store::ModuleSnapshot;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;

    fn paths(module: &impl ModuleSnapshot) -> Vec<String> {
        module.collect(None, None, true).into_iter().map(|s| s.name).collect()
    }

    #[test]
    fn parameter_paths_are_burns() {
        let device = Device::flex();
        let linear = LinearConfig::new(4, 3).init(&device);
        assert_eq!(paths(&FusedLinear::from(linear.clone())), paths(&linear));
        let norm = LayerNormConfig::new(4).init(&device);
        let fused = FusedLayerNorm::new(&LayerNormConfig::new(4), &device);
        assert_eq!(paths(&fused), paths(&norm));
        assert_eq!(fused.num_params(), norm.num_params());
    }

    #[test]
    fn burn_path_and_fused_path_agree() {
        let device = Device::flex();
        let linear = LinearConfig::new(6, 5).init(&device);
        let fused = FusedLinear::from(linear.clone());
        let x = Tensor::<3>::random([2, 3, 6], Distribution::Normal(0.0, 1.0), &device);
        let tol = burn::tensor::Tolerance::absolute(1e-6);
        fused.forward(x.clone()).into_data().assert_approx_eq::<f32>(&linear.forward(x.clone()).into_data(), tol);
        // Rank 1 takes Burn's path.
        let v = Tensor::<1>::random([6], Distribution::Normal(0.0, 1.0), &device);
        fused.forward(v.clone()).into_data().assert_approx_eq::<f32>(&linear.forward(v).into_data(), tol);

        let config = LayerNormConfig::new(6).with_epsilon(1e-3);
        let (norm, fused) = (config.init(&device), FusedLayerNorm::new(&config, &device));
        let x = Tensor::<3>::random([2, 3, 6], Distribution::Normal(1.0, 2.0), &device);
        fused.forward(x.clone()).into_data().assert_approx_eq::<f32>(&norm.forward(x).into_data(), tol);
    }
}
