//! A small, seeded random source, so that every stream is reproducible from the benchmark's
//! seed on any machine and needs no dependency: xoshiro256** seeded through splitmix64, with
//! Box-Muller normals.

/// One step of splitmix64: a good 64-bit mixer, used to derive seeds and to fill xoshiro's
/// state (the seeding its authors recommend).
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes several words into one seed, so that streams keyed by (seed, scenario, run) are
/// unrelated to each other.
pub(crate) fn derive_seed(parts: &[u64]) -> u64 {
    let mut state = 0x6A09_E667_F3BC_C908_u64;
    let mut out = 0;
    for &part in parts {
        state ^= part;
        out = splitmix64(&mut state);
    }
    out
}

/// xoshiro256** with a cached second Box-Muller normal.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub(crate) fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng {
            s,
            spare_normal: None,
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), with 53 random bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    fn uniform_open_zero(&mut self) -> f64 {
        1.0 - self.uniform()
    }

    /// True with probability `p`.
    pub(crate) fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Exponential with rate `rate` (mean `1 / rate`).
    pub(crate) fn exponential(&mut self, rate: f64) -> f64 {
        -self.uniform_open_zero().ln() / rate
    }

    /// Standard normal (Box-Muller; the pair's second value is kept for the next call).
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let radius = (-2.0 * self.uniform_open_zero().ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * self.uniform()).sin_cos();
        self.spare_normal = Some(radius * sin);
        radius * cos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // Named, so that it wins over the prelude's `Rng` trait.
    use super::Rng;
    use proptest::prelude::*;

    #[test]
    fn xoshiro_matches_the_reference_output() {
        // State [1, 2, 3, 4] gives 11520, 0, 1509978240, 1215971899390074240 in the reference C.
        let mut rng = Rng {
            s: [1, 2, 3, 4],
            spare_normal: None,
        };
        let out: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(out, [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240]);
    }

    #[test]
    fn splitmix_matches_the_reference_output() {
        let mut state = 1234567;
        assert_eq!(splitmix64(&mut state), 6_457_827_717_110_365_317);
        assert_eq!(splitmix64(&mut state), 3_203_168_211_198_807_973);
    }

    #[test]
    fn normals_have_mean_zero_and_unit_variance() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.01, "{var}");
    }

    #[test]
    fn derived_seeds_depend_on_every_part() {
        let base = derive_seed(&[1, 2, 3]);
        assert_eq!(base, derive_seed(&[1, 2, 3]));
        assert_ne!(base, derive_seed(&[1, 2, 4]));
        assert_ne!(base, derive_seed(&[1, 3, 3]));
        assert_ne!(base, derive_seed(&[2, 2, 3]));
    }

    proptest! {
        #[test]
        fn the_same_seed_gives_the_same_stream(seed in any::<u64>()) {
            let mut a = Rng::new(seed);
            let mut b = Rng::new(seed);
            for _ in 0..64 {
                prop_assert_eq!(a.next_u64(), b.next_u64());
                prop_assert_eq!(a.normal().to_bits(), b.normal().to_bits());
            }
        }

        #[test]
        fn different_seeds_give_different_streams(seed in any::<u64>()) {
            let mut a = Rng::new(seed);
            let mut b = Rng::new(seed.wrapping_add(1));
            let a_words: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
            let b_words: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
            prop_assert_ne!(a_words, b_words);
        }

        #[test]
        fn uniforms_stay_in_range(seed in any::<u64>()) {
            let mut rng = Rng::new(seed);
            for _ in 0..256 {
                let u = rng.uniform();
                prop_assert!((0.0..1.0).contains(&u));
                prop_assert!(rng.exponential(3.0) >= 0.0);
            }
        }
    }
}
