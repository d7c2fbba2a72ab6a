//! How the devices of `run.devices` train together.
//!
//! Every multi-device run is synchronous data parallelism over one global micro-batch of
//! `devices x data.batch_size` images: device `d` trains share `d` of it (see
//! [`super::loader::EpochLoader::across_devices`]), the gradients of all shares are combined into
//! their mean, and the optimizer and the schedule step once per accumulation group, exactly as
//! one device would with the global batch. What combines the gradients depends on what Burn 0.22
//! can do on the devices:
//!
//! - CUDA devices: burn-train's DDP strategy. Each device runs its own worker with its own copy
//!   of the model and optimizer; the gradients are all-reduced (mean) during the backward pass
//!   through CubeCL's CUDA collectives (NCCL). Burn 0.22 implements these collectives on CUDA
//!   only.
//! - Other devices (wgpu, Vulkan, Metal, the CPU): burn-train's multi-device strategy with the
//!   optimizer on the first device. Each device computes its share's gradients on a worker
//!   thread; they are moved to the first device and summed there, so each share's loss is
//!   divided by the device count for the sum to be the mean.

use crate::device::DeviceSpec;

/// The way a run's devices combine their gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// One device.
    Single,
    /// burn-train's DDP strategy: gradients all-reduced to their mean on every device.
    Ddp {
        /// Devices taking part.
        devices: usize,
    },
    /// burn-train's multi-device strategy: gradients summed on the first device.
    MainDevice {
        /// Devices taking part.
        devices: usize,
    },
}

impl Parallelism {
    /// What `run.devices` gets: DDP when every device is a CUDA device, else the main-device
    /// strategy; one device (or none listed) trains alone.
    pub fn of(devices: &[DeviceSpec]) -> Self {
        match devices.len() {
            0 | 1 => Parallelism::Single,
            n if devices.iter().all(|d| matches!(d, DeviceSpec::Cuda(_))) => Parallelism::Ddp { devices: n },
            n => Parallelism::MainDevice { devices: n },
        }
    }

    /// How many device shares burn-train adds up into one gradient (the mean needs each loss
    /// divided by this).
    pub fn summed_shares(self) -> usize {
        match self {
            Parallelism::MainDevice { devices } => devices,
            Parallelism::Single | Parallelism::Ddp { .. } => 1,
        }
    }

    /// A short description for the run's log.
    pub fn describe(self) -> Option<String> {
        match self {
            Parallelism::Single => None,
            Parallelism::Ddp { devices } => {
                Some(format!("{devices} CUDA devices with burn-train's DDP (gradients all-reduced to their mean)"))
            }
            Parallelism::MainDevice { devices } => Some(format!(
                "{devices} devices with burn-train's multi-device strategy (gradients averaged on the first device)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_devices_get_ddp_and_others_the_main_device_strategy() {
        let spec = |s: &str| s.parse::<DeviceSpec>().unwrap();
        assert_eq!(Parallelism::of(&[]), Parallelism::Single);
        assert_eq!(Parallelism::of(&[spec("cuda:0")]), Parallelism::Single);
        let ddp = Parallelism::of(&[spec("cuda:0"), spec("cuda:1")]);
        assert_eq!((ddp, ddp.summed_shares()), (Parallelism::Ddp { devices: 2 }, 1));
        let main = Parallelism::of(&[spec("wgpu:0"), spec("wgpu:1"), spec("cpu")]);
        assert_eq!((main, main.summed_shares()), (Parallelism::MainDevice { devices: 3 }, 3));
        assert_eq!(Parallelism::of(&[spec("cuda:0"), spec("cpu")]), Parallelism::MainDevice { devices: 2 });
    }
}
