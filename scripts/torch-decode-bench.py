"""Decoding speed of the PyTorch yardstick (torch_ref.py) on synthetic batches.

torch_ref's --bench mode times training only; this imports its model and search functions and
times batched greedy and beam-5 search the way `rnnsearch bench --decode` does: B random source
sentences of --src-len tokens, at most --tgt-len output tokens, an untrained model (so both
tools decode to the length limit), sentences/s over --batches batches after one warm-up batch.

Usage: python scripts/torch-decode-bench.py --anchors ../shared/anchors --decode greedy|beam5 \
           --threads 2 --vocab 8000 --emb 256 --hidden 256 --att 256 --batch-tokens 2000 \
           --src-len 16 --tgt-len 16 [--batches 10]
"""
import argparse, sys, time

p = argparse.ArgumentParser()
a = p.add_argument
a("--anchors", required=True); a("--decode", choices=["greedy", "beam5"], required=True)
a("--threads", type=int, default=2); a("--vocab", type=int, default=8000)
a("--emb", type=int, default=256); a("--hidden", type=int, default=256); a("--att", type=int, default=256)
a("--batch-tokens", type=int, default=2000); a("--src-len", type=int, default=16)
a("--tgt-len", type=int, default=16); a("--batches", type=int, default=10)
args = p.parse_args()
sys.path.insert(0, args.anchors)
import torch  # noqa: E402
import torch_ref  # noqa: E402

torch.manual_seed(1)
torch.set_num_threads(args.threads)
model = torch_ref.Seq2Seq(args.vocab, args.emb, args.hidden, args.att, 0.0).eval()
B = args.batch_tokens // args.tgt_len
src = torch.randint(4, args.vocab, (B, args.src_len))
slen = torch.full((B,), args.src_len)


def run():
    with torch.no_grad():
        if args.decode == "greedy":
            return torch_ref.greedy(model, src, slen, args.tgt_len)
        return torch_ref.beam_search(model, src, slen, args.tgt_len, 5, 1.0)


run()
t = time.time()
for _ in range(args.batches):
    run()
dt = time.time() - t
print(f"bench: {args.batches * B / dt:.1f} sentences/s {args.decode} ({args.batches} batches of {B}, "
      f"src_len={args.src_len}, {dt / args.batches * 1000:.1f} ms/batch, threads={torch.get_num_threads()})", flush=True)
