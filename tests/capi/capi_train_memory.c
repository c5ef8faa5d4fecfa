/* Host memory of a C API train job (docs/MEMORY.md): a pl_model holds its base deferred (readers of the mapped
 * file, nothing converted), and a train job on it trains from those readers instead of opening the file again, so
 * the process holds the base once — on the job's backend — not also on the host. The model is a 16-layer llama2.c
 * f32 file of random weights (218 MB of linears, 29 MB as NF4) written here; stories260K's tokenizer and the
 * TinyStories sample feed it. Prints the figures as one JSON line; fails when loading the model grows the resident
 * set by more than 8 MiB, or when the job's peak exceeds the NF4 base held once plus the job's own working set.
 *
 * Usage: pocketlora_capi_train_memory SHARED_DATA_DIR WORK_DIR */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/pocketlora.h"
#include "capi_ok.h"

enum { kDim = 512, kHidden = 1536, kLayers = 16, kVocab = 512, kHeads = 8, kSeq = 256 };

/* /proc/self/status's field in bytes (VmRSS: resident now, VmHWM: the peak so far). */
static double status_bytes(const char* field) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  double kb = -1;
  const size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') kb = atof(line + n + 1);
  if (f) fclose(f);
  if (kb < 0) {
    fprintf(stderr, "no %s in /proc/self/status\n", field);
    exit(1);
  }
  return kb * 1024.0;
}

/* llama2.c v1: a 256-byte header (magic "ak42", version 1, the config, shared classifier), then f32 weights. */
static void write_model(const char* path) {
  FILE* f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(1);
  }
  unsigned char header[256] = {0};
  const uint32_t magic = 0x616b3432;
  const int32_t version = 1, h[7] = {kDim, kHidden, kLayers, kHeads, kHeads, kVocab, kSeq};
  memcpy(header, &magic, 4);
  memcpy(header + 4, &version, 4);
  memcpy(header + 8, h, sizeof h);
  header[36] = 1; /* tied */
  fwrite(header, 1, sizeof header, f);
  const int64_t n = (int64_t)kLayers * (2 * kDim + 4 * kDim * kDim + 3 * kDim * kHidden) + kDim + (int64_t)kVocab * kDim;
  static float chunk[1 << 16];
  uint64_t state = 7;
  for (int64_t done = 0; done < n;) {
    const int64_t k = n - done < (int64_t)(sizeof chunk / sizeof chunk[0]) ? n - done : (int64_t)(sizeof chunk / sizeof chunk[0]);
    for (int64_t i = 0; i < k; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      chunk[i] = 0.05f * ((float)(state >> 40) / 16777216.0f - 0.5f);
    }
    fwrite(chunk, sizeof(float), (size_t)k, f);
    done += k;
  }
  fclose(f);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SHARED_DATA_DIR WORK_DIR\n", argv[0]);
    return 2;
  }
  const char *data = argv[1], *work = argv[2];
  mkdir(work, 0755);
  char model_path[1024], tok[1024], out[1024], cfg[4096];
  snprintf(model_path, sizeof model_path, "%s/model16.bin", work);
  snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", data);
  snprintf(out, sizeof out, "%s/run", work);
  write_model(model_path);

  pl_runtime* rt = NULL;
  OK(pl_runtime_open(PL_BACKEND_CPU, -1, &rt));
  const double before_load = status_bytes("VmRSS");
  pl_model* model = NULL;
  OK(pl_model_load(rt, model_path, tok, "nf4", &model));
  const double after_load = status_bytes("VmRSS"), peak_load = status_bytes("VmHWM");
  snprintf(cfg, sizeof cfg,
           "{\"data\": \"%s/datasets/tinystories_sample.txt\", \"out\": \"%s\", \"steps\": 2, \"batch\": 2, "
           "\"seq_len\": 32, \"rank\": 4, \"lr\": 0.003, \"val_fraction\": 0.2, \"eval_every\": 1000, "
           "\"save_every\": 1000, \"quant\": \"nf4\"}",
           data, out);
  pl_train_job* job = NULL;
  OK(pl_train_job_create(model, cfg, NULL, NULL, &job));
  OK(pl_train_job_start(job));
  pl_job_state final_state;
  OK(pl_train_job_wait(job, &final_state));
  const double peak = status_bytes("VmHWM");
  OK(pl_train_job_destroy(job));
  OK(pl_model_free(model));
  OK(pl_runtime_close(rt));
  remove(model_path);

  const double mib = 1 << 20;
  const double linears_f32 = 4.0 * kLayers * (4.0 * kDim * kDim + 3.0 * kDim * kHidden);
  const double nf4 = linears_f32 / 8.0 * (1.0 + 1.0 / 64.0 * 4.0); /* 4-bit codes + an absmax per 64 (upper bound) */
  printf("{\"rss_before_load_mib\": %.1f, \"rss_after_load_mib\": %.1f, \"peak_after_load_mib\": %.1f, "
         "\"peak_after_train_mib\": %.1f, \"linears_f32_mib\": %.1f, \"nf4_base_mib\": %.1f, \"state\": %d}\n",
         before_load / mib, after_load / mib, peak_load / mib, peak / mib, linears_f32 / mib, nf4 / mib, (int)final_state);
  int failures = 0;
  if (final_state != PL_JOB_FINISHED) {
    fprintf(stderr, "the job ended in state %d, not finished\n", (int)final_state);
    ++failures;
  }
  if (after_load - before_load > 8 * mib) {
    fprintf(stderr, "loading the model grew the resident set by %.1f MiB (a host copy of the base?)\n",
            (after_load - before_load) / mib);
    ++failures;
  }
  return failures ? 1 : 0;
}
