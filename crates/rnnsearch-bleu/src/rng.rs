//! NumPy's default random generator, `np.random.default_rng(seed)`, bit
//! for bit: the draws sacreBLEU's bootstrap and approximate-randomization
//! tests make, so that a seed gives the resamples sacreBLEU gives.
//!
//! Three layers, as NumPy has them:
//! - [`SeedSequence`] turns an integer seed into a 128-bit state and
//!   increment (NumPy's `SeedSequence.generate_state(4, uint64)`);
//! - [`Pcg64`] is the PCG XSL-RR 128/64 generator (`np.random.PCG64`), whose
//!   32-bit draws use the two halves of one 64-bit output, low half first;
//! - [`Pcg64::choice`] and [`Pcg64::bools`] are `Generator.choice(n,
//!   replace=True)` (Lemire's bounded integers on 32-bit draws) and
//!   `Generator.integers(2, dtype=bool)` (one bit of a 32-bit draw each).

const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;
const POOL_SIZE: usize = 4;

/// NumPy's `SeedSequence` for a non-negative integer seed (no spawn key).
#[derive(Debug, Clone)]
pub struct SeedSequence {
    pool: [u32; POOL_SIZE],
}

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut value = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    value = value.wrapping_mul(*hash_const);
    value ^ (value >> XSHIFT)
}

fn mix(x: u32, y: u32) -> u32 {
    let result = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    result ^ (result >> XSHIFT)
}

impl SeedSequence {
    /// The sequence of `seed`, entropy taken as its 32-bit words, least
    /// significant first.
    pub fn new(seed: u64) -> Self {
        let entropy: Vec<u32> = if seed >> 32 == 0 {
            vec![seed as u32]
        } else {
            vec![seed as u32, (seed >> 32) as u32]
        };
        let mut pool = [0u32; POOL_SIZE];
        let mut hash_const = INIT_A;
        for (i, slot) in pool.iter_mut().enumerate() {
            *slot = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
        }
        for src in 0..POOL_SIZE {
            for dst in 0..POOL_SIZE {
                if src != dst {
                    pool[dst] = mix(pool[dst], hashmix(pool[src], &mut hash_const));
                }
            }
        }
        SeedSequence { pool }
    }

    /// `generate_state(n_words, uint64)`: pairs of 32-bit words, read as
    /// little-endian 64-bit words.
    pub fn generate_state_u64(&self, n_words: usize) -> Vec<u64> {
        let mut hash_const = INIT_B;
        let words: Vec<u32> = (0..2 * n_words)
            .map(|i| {
                let mut value = self.pool[i % POOL_SIZE] ^ hash_const;
                hash_const = hash_const.wrapping_mul(MULT_B);
                value = value.wrapping_mul(hash_const);
                value ^ (value >> XSHIFT)
            })
            .collect();
        words
            .chunks(2)
            .map(|pair| u64::from(pair[0]) | (u64::from(pair[1]) << 32))
            .collect()
    }
}

const PCG_MULTIPLIER: u128 = (0x2360_ed05_1fc6_5da4 << 64) | 0x4385_df64_9fcc_f645;

/// `np.random.PCG64`, with NumPy's buffering of 32-bit draws.
#[derive(Debug, Clone)]
pub struct Pcg64 {
    state: u128,
    inc: u128,
    pending_u32: Option<u32>,
}

impl Pcg64 {
    /// `np.random.default_rng(seed)`'s bit generator.
    pub fn new(seed: u64) -> Self {
        let words = SeedSequence::new(seed).generate_state_u64(4);
        let init_state = (u128::from(words[0]) << 64) | u128::from(words[1]);
        let init_seq = (u128::from(words[2]) << 64) | u128::from(words[3]);
        let mut rng = Pcg64 {
            state: 0,
            inc: (init_seq << 1) | 1,
            pending_u32: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self
            .state
            .wrapping_mul(PCG_MULTIPLIER)
            .wrapping_add(self.inc);
    }

    /// One 64-bit output (`random_raw`): step, then XSL-RR of the new state.
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let folded = ((self.state >> 64) as u64) ^ (self.state as u64);
        folded.rotate_right((self.state >> 122) as u32)
    }

    /// One 32-bit output: the low half of a 64-bit output, then its high half.
    pub fn next_u32(&mut self) -> u32 {
        if let Some(high) = self.pending_u32.take() {
            return high;
        }
        let next = self.next_u64();
        self.pending_u32 = Some((next >> 32) as u32);
        next as u32
    }

    /// A uniform integer in `[0, n)` for `1 <= n <= 2^32`, as NumPy's
    /// `integers(0, n, dtype=int64)`: Lemire's multiply-and-reject on
    /// 32-bit draws.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!((1..=1 << 32).contains(&n), "range {n} out of 32 bits");
        if n == 1 {
            return 0;
        }
        if n == 1 << 32 {
            return u64::from(self.next_u32());
        }
        let n = n as u32;
        let mut m = u64::from(self.next_u32()) * u64::from(n);
        let mut leftover = m as u32;
        if leftover < n {
            let threshold = (u32::MAX - (n - 1)) % n;
            while leftover < threshold {
                m = u64::from(self.next_u32()) * u64::from(n);
                leftover = m as u32;
            }
        }
        m >> 32
    }

    /// `choice(n, size=count, replace=True)`: `count` indices in `[0, n)`.
    pub fn choice(&mut self, n: usize, count: usize) -> Vec<usize> {
        (0..count).map(|_| self.below(n as u64) as usize).collect()
    }

    /// `integers(2, size=count, dtype=bool)`: each bit of a 32-bit draw in
    /// turn, least significant first, 32 booleans per draw.
    pub fn bools(&mut self, count: usize) -> Vec<bool> {
        let mut out = Vec::with_capacity(count);
        let mut buf = 0u32;
        let mut left = 0;
        for _ in 0..count {
            if left == 0 {
                buf = self.next_u32();
                left = 31;
            } else {
                buf >>= 1;
                left -= 1;
            }
            out.push(buf & 1 == 1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by NumPy 2.4 (`np.random.PCG64(12345).random_raw(3)`,
    // `SeedSequence(12345).generate_state(4, np.uint64)`, `default_rng(12345).choice(...)`).
    #[test]
    fn seed_sequence_matches_numpy() {
        assert_eq!(
            SeedSequence::new(12345).generate_state_u64(4),
            [
                0xb5ae6482a03d837c,
                0xbbe2996ffa1f7a2f,
                0x64e39a9f37158f94,
                0x3ebb0f96a013fd73
            ]
        );
    }

    #[test]
    fn raw_outputs_match_numpy() {
        let mut rng = Pcg64::new(12345);
        let raw: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            raw,
            [0x3a32b18db2ffc19d, 0x51171315c9e4c4de, 0xcc2024823444efd9]
        );
    }

    #[test]
    fn choice_matches_numpy() {
        assert_eq!(Pcg64::new(12345).choice(10, 8), [6, 2, 7, 3, 2, 7, 6, 6]);
        assert_eq!(
            Pcg64::new(12345).choice(3000, 10),
            [2097, 682, 2365, 950, 612, 2392, 1928, 2028, 2965, 1173]
        );
    }

    #[test]
    fn other_seeds_and_shared_state_match_numpy() {
        assert_eq!(
            Pcg64::new((1 << 40) + 7).choice(100, 6),
            [20, 82, 60, 25, 1, 15]
        );
        assert_eq!(Pcg64::new(0).choice(3, 6), [2, 1, 1, 0, 0, 0]);
        // The bools take one 32-bit draw; choice goes on with the other half.
        let mut rng = Pcg64::new(1);
        assert_eq!(rng.bools(5), [true; 5]);
        assert_eq!(rng.choice(1000, 4), [511, 755, 950, 34]);
    }

    #[test]
    fn bools_match_numpy() {
        let bits: String = Pcg64::new(12345)
            .bools(40)
            .iter()
            .map(|&b| if b { '1' } else { '0' })
            .collect();
        assert_eq!(bits, "1011100110000011111111110100110110110001");
    }
}
