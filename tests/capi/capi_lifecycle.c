/* The C API's whole lifecycle and its error paths, as a C11 program (api/pocketlora.h must compile as C): a CPU
 * runtime and stories260K; generation streamed and cancelled from another thread; training jobs run on their
 * worker threads with progress callbacks, paused and resumed (bit-identical to an uninterrupted run), cancelled,
 * held by the device policy through pushed sensors; the adapter store (add, list, enable, export, delete) and
 * generation with an adapter; a Vulkan runtime when a device exists. Every error path: NULL and released
 * handles, double release, a handle of another type, bad JSON configs, a missing model, an unknown or disabled
 * adapter, calls a job's state does not allow. Run by ctest (capi_lifecycle), also in the ASan+UBSan build.
 *
 * Usage: pocketlora_capi_test SHARED_DATA_DIR WORK_DIR */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/pocketlora.h"
#include "capi_ok.h"

static int g_failures = 0;

#define CHECK(cond)                                                                                       \
  do {                                                                                                    \
    if (!(cond)) {                                                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, pl_last_error()); \
      ++g_failures;                                                                                       \
    }                                                                                                     \
  } while (0)

/* A call that must fail with `want`, its message (pl_last_error) containing `part`. */
#define FAILS(call, want, part)                                                                                \
  do {                                                                                                         \
    pl_status f_st_ = (call);                                                                                  \
    if (f_st_ != (want) || !strstr(pl_last_error(), (part))) {                                                 \
      fprintf(stderr, "%s:%d: %s: expected %s with \"%s\", got %s: %s\n", __FILE__, __LINE__, #call,           \
              pl_status_name(want), (part), pl_status_name(f_st_), pl_last_error());                            \
      ++g_failures;                                                                                            \
    }                                                                                                          \
  } while (0)

static char g_data[1024], g_work[1024];

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static const char* path_in(const char* dir, const char* name, char* buf, size_t n) {
  const int used = snprintf(buf, n, "%s/%s", dir, name);
  if (used < 0 || (size_t)used >= n) {
    fprintf(stderr, "path too long: %s/%s\n", dir, name);
    exit(2);
  }
  return buf;
}

static int exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static char* read_whole(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return buf;
}

static int same_file(const char* a, const char* b) {
  size_t na = 0, nb = 0;
  char* x = read_whole(a, &na);
  char* y = read_whole(b, &nb);
  int same = x && y && na == nb && memcmp(x, y, na) == 0;
  free(x);
  free(y);
  return same;
}

/* ---- generation ------------------------------------------------------------------------------------------ */
typedef struct {
  char text[8192];
  int pieces;
} Collected;

static void collect_piece(const char* piece, size_t length, void* user_data) {
  Collected* c = user_data;
  CHECK(strlen(piece) == length); /* NUL-terminated as documented */
  size_t used = strlen(c->text);
  if (used + length < sizeof c->text) memcpy(c->text + used, piece, length + 1);
  ++c->pieces;
}

/* The generating thread's callback hands the first piece to a canceller thread and waits until it has cancelled,
 * so the generation must stop right after that token: exactly one piece arrives. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int first_piece, cancelled, pieces;
  pl_generation* gen;
} CancelRace;

static void piece_then_wait_for_cancel(const char* piece, size_t length, void* user_data) {
  (void)piece;
  (void)length;
  CancelRace* r = user_data;
  pthread_mutex_lock(&r->mu);
  ++r->pieces;
  r->first_piece = 1;
  pthread_cond_broadcast(&r->cv);
  while (!r->cancelled) pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
}

static void* canceller(void* arg) {
  CancelRace* r = arg;
  pthread_mutex_lock(&r->mu);
  while (!r->first_piece) pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
  OK(pl_generation_cancel(r->gen));
  pthread_mutex_lock(&r->mu);
  r->cancelled = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static void test_generation(pl_model* model, const char* base_text) {
  pl_generate_params p;
  pl_generate_params_init(&p);
  p.max_tokens = 24;
  Collected c;
  memset(&c, 0, sizeof c);
  char* text = NULL;
  OK(pl_generate(model, NULL, NULL, NULL, 1.0f, "Once upon a time", &p, collect_piece, &c, &text));
  CHECK(strcmp(text, base_text) == 0); /* greedy: the same text every time */
  CHECK(strcmp(text, c.text) == 0);    /* the streamed pieces make up the text */
  CHECK(c.pieces > 1);
  pl_free_string(text);

  /* Sampling with a seed is reproducible. */
  p.temperature = 0.8f;
  p.top_k = 40;
  p.seed = 7;
  char *s1 = NULL, *s2 = NULL;
  OK(pl_generate(model, NULL, NULL, NULL, 1.0f, "Once upon a time", &p, NULL, NULL, &s1));
  OK(pl_generate(model, NULL, NULL, NULL, 1.0f, "Once upon a time", &p, NULL, NULL, &s2));
  CHECK(strcmp(s1, s2) == 0);
  pl_free_string(s1);
  pl_free_string(s2);

  /* Cancel from another thread: stops at the next token. */
  CancelRace r;
  memset(&r, 0, sizeof r);
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  OK(pl_generation_create(&r.gen));
  pthread_t t;
  CHECK(pthread_create(&t, NULL, canceller, &r) == 0);
  pl_generate_params_init(&p);
  p.max_tokens = 400;
  char* partial = NULL;
  FAILS(pl_generate(model, r.gen, NULL, NULL, 1.0f, "Once upon a time", &p, piece_then_wait_for_cancel, &r, &partial),
        PL_ERR_CANCELLED, "cancelled after 1 tokens");
  pthread_join(t, NULL);
  CHECK(r.pieces == 1);
  CHECK(partial != NULL && strlen(partial) > 0 && strlen(partial) < 40);
  pl_free_string(partial);
  /* Cancellation is sticky: the handle stays cancelled. */
  FAILS(pl_generate(model, r.gen, NULL, NULL, 1.0f, "Hi", &p, NULL, NULL, NULL), PL_ERR_CANCELLED, "cancelled");
  OK(pl_generation_destroy(r.gen));
  FAILS(pl_generation_cancel(r.gen), PL_ERR_INVALID_HANDLE, "pl_generation");
  FAILS(pl_generation_destroy(r.gen), PL_ERR_INVALID_HANDLE, "pl_generation");
  pthread_mutex_destroy(&r.mu);
  pthread_cond_destroy(&r.cv);

  /* Bad arguments. */
  FAILS(pl_generate(model, NULL, NULL, NULL, 1.0f, NULL, &p, NULL, NULL, NULL), PL_ERR_INVALID_INPUT, "prompt is NULL");
  p.max_tokens = 0;
  FAILS(pl_generate(model, NULL, NULL, NULL, 1.0f, "Hi", &p, NULL, NULL, NULL), PL_ERR_INVALID_INPUT, "max_tokens");
  pl_generate_params_init(&p);
  p.temperature = -1.0f;
  FAILS(pl_generate(model, NULL, NULL, NULL, 1.0f, "Hi", &p, NULL, NULL, NULL), PL_ERR_INVALID_INPUT, "temperature");
  FAILS(pl_generate(NULL, NULL, NULL, NULL, 1.0f, "Hi", NULL, NULL, NULL, NULL), PL_ERR_INVALID_HANDLE, "NULL");
  FAILS(pl_generate(model, NULL, NULL, "story", 1.0f, "Hi", NULL, NULL, NULL, NULL), PL_ERR_INVALID_INPUT,
        "without the store");
}

/* ---- training jobs ---------------------------------------------------------------------------------------- */
typedef struct {
  pthread_mutex_t mu;
  pl_train_job* job;
  int pause_at_step; /* > 0: the callback pauses the job after this step */
  double losses[64];
  int64_t last_step, total_steps;
  pl_job_state states[512];
  int n_states;
  double last_temperature;
  int bad_reports;
} Recorder;

static void record(const pl_train_progress* p, void* user_data) {
  Recorder* r = user_data;
  pthread_mutex_lock(&r->mu);
  if (r->n_states < 512) r->states[r->n_states++] = p->state;
  if (!p->message) ++r->bad_reports;
  if (p->state == PL_JOB_RUNNING && p->step > r->last_step) {
    if (p->step != r->last_step + 1 || p->step > 64 || !isfinite(p->loss) || !(p->tokens_per_s > 0)) ++r->bad_reports;
    else r->losses[p->step - 1] = p->loss;
    r->last_step = p->step;
    r->total_steps = p->total_steps;
  }
  r->last_temperature = p->temperature_c;
  int pause = r->pause_at_step > 0 && p->step == r->pause_at_step && p->state == PL_JOB_RUNNING;
  if (pause) r->pause_at_step = 0;
  pthread_mutex_unlock(&r->mu);
  /* Control calls are allowed from the job's own callback; waiting for or destroying it is not. */
  if (pause) {
    OK(pl_train_job_pause(r->job));
    FAILS(pl_train_job_wait(r->job, NULL), PL_ERR_BAD_STATE, "own callback");
    FAILS(pl_train_job_destroy(r->job), PL_ERR_BAD_STATE, "own callback");
  }
}

static void recorder_init(Recorder* r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  r->last_temperature = -1000;
}

static int saw_state(Recorder* r, pl_job_state s) {
  pthread_mutex_lock(&r->mu);
  int seen = 0;
  for (int i = 0; i < r->n_states; ++i) seen |= r->states[i] == s;
  pthread_mutex_unlock(&r->mu);
  return seen;
}

static int wait_for_state(pl_train_job* job, pl_job_state want, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    pl_job_state s;
    OK(pl_train_job_state(job, &s));
    if (s == want) return 1;
    sleep_ms(10);
  }
  return 0;
}

static void job_config(char* buf, size_t n, const char* out, int steps, const char* extra) {
  snprintf(buf, n,
           "{\"data\": \"%s/datasets/tinystories_sample.txt\", \"out\": \"%s\", \"steps\": %d, \"batch\": 2, "
           "\"seq_len\": 32, \"rank\": 4, \"lr\": 0.003, \"val_fraction\": 0.2, \"eval_every\": 1000, \"save_every\": 1000%s}",
           g_data, out, steps, extra);
}

static void test_config_errors(pl_model* model) {
  char cfg[4096], out[1024];
  static char sentinel;
  pl_train_job* job = (pl_train_job*)&sentinel; /* a failed create must leave it NULL */
  path_in(g_work, "bad-run", out, sizeof out);
  FAILS(pl_train_job_create(model, "{\"data\": ", NULL, NULL, &job), PL_ERR_FORMAT, "not JSON");
  CHECK(job == NULL);
  FAILS(pl_train_job_create(model, "[1, 2]", NULL, NULL, &job), PL_ERR_FORMAT, "expected a JSON object");
  FAILS(pl_train_job_create(model, "{\"data\": \"x.txt\"}", NULL, NULL, &job), PL_ERR_FORMAT, "missing field 'out'");
  job_config(cfg, sizeof cfg, out, 2, ", \"learning_rate\": 0.1");
  FAILS(pl_train_job_create(model, cfg, NULL, NULL, &job), PL_ERR_INVALID_INPUT, "unknown field 'learning_rate'");
  job_config(cfg, sizeof cfg, out, 2, ", \"rank\": \"eight\"");
  /* a repeated key: nlohmann keeps the last, a string where a number belongs */
  FAILS(pl_train_job_create(model, cfg, NULL, NULL, &job), PL_ERR_FORMAT, "field 'rank'");
  job_config(cfg, sizeof cfg, out, 2, ", \"optimizer\": \"adamx\"");
  FAILS(pl_train_job_create(model, cfg, NULL, NULL, &job), PL_ERR_INVALID_INPUT, "adamx");
  job_config(cfg, sizeof cfg, out, 2, ", \"batch\": 0");
  FAILS(pl_train_job_create(model, cfg, NULL, NULL, &job), PL_ERR_INVALID_INPUT, "--batch");
  job_config(cfg, sizeof cfg, out, 2, ", \"max_memory\": \"lots\"");
  FAILS(pl_train_job_create(model, cfg, NULL, NULL, &job), PL_ERR_INVALID_INPUT, "max_memory");
  job_config(cfg, sizeof cfg, out, 2, ", \"policy\": {\"poll_secs\": 1}");
  FAILS(pl_train_job_create(model, cfg, NULL, NULL, &job), PL_ERR_FORMAT, "poll_secs");
  snprintf(cfg, sizeof cfg, "{\"data\": \"%s/no-such-data.txt\", \"out\": \"%s\", \"steps\": 1}", g_work, out);
  FAILS(pl_train_job_create(model, cfg, NULL, NULL, &job), PL_ERR_IO, "no-such-data.txt");
  FAILS(pl_train_job_create(model, NULL, NULL, NULL, &job), PL_ERR_INVALID_INPUT, "config_json is NULL");
  FAILS(pl_train_job_create(NULL, "{}", NULL, NULL, &job), PL_ERR_INVALID_HANDLE, "pl_model handle is NULL");
  CHECK(!exists(out)); /* nothing is written before the job runs */
}

/* One run of `steps` steps, optionally paused after step `pause_at` and resumed; fills `r`. */
static void run_job(pl_model* model, const char* out, int steps, int pause_at, Recorder* r) {
  char cfg[4096];
  job_config(cfg, sizeof cfg, out, steps, "");
  recorder_init(r);
  r->pause_at_step = pause_at;
  pl_train_job* job = NULL;
  OK(pl_train_job_create(model, cfg, record, r, &job));
  r->job = job;
  pl_job_state s;
  OK(pl_train_job_state(job, &s));
  CHECK(s == PL_JOB_CREATED);
  FAILS(pl_train_job_wait(job, NULL), PL_ERR_BAD_STATE, "never started");
  FAILS(pl_train_job_result(job, NULL), PL_ERR_INVALID_INPUT, "json_out");
  /* Readings pushed to a job without a policy only feed the reported temperature. */
  pl_thermal_zone zones[2] = {{"skin", 41.5}, {"modem", 80.0}}; /* modem is not a zone the policy counts */
  pl_sensor_readings rd;
  pl_sensor_readings_init(&rd);
  rd.battery_temp_c = 35.0;
  rd.zones = zones;
  rd.zone_count = 2;
  OK(pl_train_job_push_sensors(job, &rd));
  OK(pl_train_job_start(job));
  FAILS(pl_train_job_start(job), PL_ERR_BAD_STATE, "running");
  if (pause_at > 0) {
    CHECK(wait_for_state(job, PL_JOB_PAUSED, 60000));
    pthread_mutex_lock(&r->mu);
    int64_t at = r->last_step;
    pthread_mutex_unlock(&r->mu);
    CHECK(at == pause_at);
    char ckpt[1200], name[64];
    snprintf(name, sizeof name, "checkpoint-%d", pause_at);
    CHECK(exists(path_in(out, name, ckpt, sizeof ckpt))); /* the pause wrote its checkpoint */
    sleep_ms(200);
    pthread_mutex_lock(&r->mu);
    CHECK(r->last_step == at); /* no step while paused */
    pthread_mutex_unlock(&r->mu);
    OK(pl_train_job_resume(job));
  }
  OK(pl_train_job_wait(job, &s));
  CHECK(s == PL_JOB_FINISHED);
  CHECK(r->last_step == steps && r->total_steps == steps);
  CHECK(r->bad_reports == 0);
  CHECK(r->states[r->n_states - 1] == PL_JOB_FINISHED);
  CHECK(fabs(r->last_temperature - 41.5) < 1e-9); /* the hottest counted reading */
  char* result = NULL;
  OK(pl_train_job_result(job, &result));
  CHECK(strstr(result, "\"state\":\"finished\"") != NULL);
  CHECK(strstr(result, out) != NULL);
  pl_free_string(result);
  FAILS(pl_train_job_pause(job), PL_ERR_BAD_STATE, "finished");
  FAILS(pl_train_job_resume(job), PL_ERR_BAD_STATE, "finished");
  OK(pl_train_job_cancel(job)); /* an ended job: nothing to do */
  OK(pl_train_job_destroy(job));
  FAILS(pl_train_job_state(job, &s), PL_ERR_INVALID_HANDLE, "not a live pl_train_job");
  FAILS(pl_train_job_destroy(job), PL_ERR_INVALID_HANDLE, "pl_train_job");
  pthread_mutex_destroy(&r->mu);
}

static void test_pause_resume_exact(pl_model* model, char* run_dir, size_t n) {
  char out_a[1024], out_b[1024];
  path_in(g_work, "run-straight", out_a, sizeof out_a);
  path_in(g_work, "run-paused", out_b, sizeof out_b);
  static Recorder a, b;
  run_job(model, out_a, 6, 0, &a);
  run_job(model, out_b, 6, 2, &b);
  CHECK(saw_state(&b, PL_JOB_PAUSED) && !saw_state(&a, PL_JOB_PAUSED));
  /* Paused and resumed = never paused, bit for bit: every step's loss and the adapter file. */
  for (int i = 0; i < 6; ++i) CHECK(a.losses[i] == b.losses[i]);
  char fa[1200], fb[1200];
  CHECK(same_file(path_in(out_a, "adapter_model.safetensors", fa, sizeof fa),
                  path_in(out_b, "adapter_model.safetensors", fb, sizeof fb)));
  snprintf(run_dir, n, "%s", out_a);
}

static void test_cancel_and_states(pl_model* model) {
  char cfg[4096], out[1024];
  path_in(g_work, "run-cancelled", out, sizeof out);
  job_config(cfg, sizeof cfg, out, 5000, "");
  static Recorder r;
  recorder_init(&r);
  pl_train_job* job = NULL;
  OK(pl_train_job_create(model, cfg, record, &r, &job));
  r.job = job;
  OK(pl_train_job_start(job));
  for (int waited = 0; waited < 60000; waited += 10) {
    pthread_mutex_lock(&r.mu);
    int64_t step = r.last_step;
    pthread_mutex_unlock(&r.mu);
    if (step >= 1) break;
    sleep_ms(10);
  }
  OK(pl_train_job_cancel(job));
  pl_job_state s;
  OK(pl_train_job_wait(job, &s));
  CHECK(s == PL_JOB_CANCELLED);
  CHECK(r.last_step >= 1 && r.last_step < 5000);
  char* result = NULL;
  OK(pl_train_job_result(job, &result));
  CHECK(strstr(result, "\"state\":\"cancelled\"") && strstr(result, "checkpoint-"));
  pl_free_string(result);
  FAILS(pl_train_job_start(job), PL_ERR_BAD_STATE, "cancelled");
  FAILS(pl_train_job_pause(job), PL_ERR_BAD_STATE, "cancelled");
  OK(pl_train_job_destroy(job));
  pthread_mutex_destroy(&r.mu);

  /* Cancelled before start: at once, and never runs. */
  path_in(g_work, "run-never-started", out, sizeof out);
  job_config(cfg, sizeof cfg, out, 2, "");
  OK(pl_train_job_create(model, cfg, NULL, NULL, &job));
  OK(pl_train_job_cancel(job));
  OK(pl_train_job_state(job, &s));
  CHECK(s == PL_JOB_CANCELLED);
  FAILS(pl_train_job_start(job), PL_ERR_BAD_STATE, "cancelled");
  OK(pl_train_job_wait(job, &s));
  CHECK(s == PL_JOB_CANCELLED);
  /* Bad readings. */
  pl_sensor_readings rd;
  pl_sensor_readings_init(&rd);
  rd.charging = (pl_tristate)5;
  FAILS(pl_train_job_push_sensors(job, &rd), PL_ERR_INVALID_INPUT, "charging");
  pl_sensor_readings_init(&rd);
  rd.zone_count = 1;
  FAILS(pl_train_job_push_sensors(job, &rd), PL_ERR_INVALID_INPUT, "zones NULL");
  FAILS(pl_train_job_push_sensors(job, NULL), PL_ERR_INVALID_INPUT, "readings is NULL");
  /* A job is not a model. */
  FAILS(pl_model_free((pl_model*)job), PL_ERR_INVALID_HANDLE, "pl_model");
  OK(pl_train_job_destroy(job));

  /* A destroyed running job: destroy cancels and joins it. */
  path_in(g_work, "run-destroyed", out, sizeof out);
  job_config(cfg, sizeof cfg, out, 5000, ", \"resume\": null");
  OK(pl_train_job_create(model, cfg, NULL, NULL, &job));
  OK(pl_train_job_start(job));
  OK(pl_train_job_destroy(job));
  FAILS(pl_train_job_cancel(job), PL_ERR_INVALID_HANDLE, "pl_train_job");
}

/* Under the device policy: held (WAITING) while not charging, trains once the pushed readings allow it. */
static void test_policy(pl_model* model) {
  char cfg[4096], out[1024];
  path_in(g_work, "run-policy", out, sizeof out);
  job_config(cfg, sizeof cfg, out, 2, ", \"policy\": {\"poll_seconds\": 0.02}");
  static Recorder r;
  recorder_init(&r);
  pl_train_job* job = NULL;
  OK(pl_train_job_create(model, cfg, record, &r, &job));
  r.job = job;
  pl_sensor_readings rd;
  pl_sensor_readings_init(&rd);
  rd.battery_percent = 80;
  rd.charging = PL_FALSE;
  rd.battery_temp_c = 30;
  rd.screen_on = PL_FALSE;
  OK(pl_train_job_push_sensors(job, &rd));
  OK(pl_train_job_start(job));
  CHECK(wait_for_state(job, PL_JOB_WAITING, 60000));
  sleep_ms(200);
  pthread_mutex_lock(&r.mu);
  CHECK(r.last_step == 0); /* not charging: no step */
  pthread_mutex_unlock(&r.mu);
  /* A pause while the policy holds the job is taken at once, and a resume goes back to waiting. */
  OK(pl_train_job_pause(job));
  CHECK(wait_for_state(job, PL_JOB_PAUSED, 60000));
  OK(pl_train_job_resume(job));
  rd.charging = PL_TRUE;
  OK(pl_train_job_push_sensors(job, &rd));
  pl_job_state s;
  OK(pl_train_job_wait(job, &s));
  CHECK(s == PL_JOB_FINISHED);
  CHECK(r.last_step == 2);
  CHECK(fabs(r.last_temperature - 30.0) < 1e-9);
  OK(pl_train_job_destroy(job));
  pthread_mutex_destroy(&r.mu);
}

/* ---- adapter store ------------------------------------------------------------------------------------------ */
static void test_adapters(pl_model* model, const char* run_dir, const char* base_text) {
  char root[1024], exported[1024], f[1200];
  path_in(g_work, "store", root, sizeof root);
  pl_adapter_store* store = NULL;
  OK(pl_adapter_store_open(root, &store));
  char* list = NULL;
  OK(pl_adapter_store_list(store, &list));
  CHECK(strstr(list, "\"adapters\":[]") != NULL);
  pl_free_string(list);

  OK(pl_adapter_store_add(store, model, run_dir, "story", 0));
  FAILS(pl_adapter_store_add(store, model, run_dir, "story", 0), PL_ERR_INVALID_INPUT, "story");
  FAILS(pl_adapter_store_add(store, model, run_dir, "../escape", 0), PL_ERR_INVALID_INPUT, "../escape");
  FAILS(pl_adapter_store_add(store, model, g_work, "empty", 0), PL_ERR_IO, "adapter");
  OK(pl_adapter_store_list(store, &list));
  CHECK(strstr(list, "\"name\":\"story\"") && strstr(list, "\"enabled\":true"));
  pl_free_string(list);

  pl_generate_params p;
  pl_generate_params_init(&p);
  p.max_tokens = 24;
  char* text = NULL;
  /* At scale 0 the adapter adds exactly nothing; at a large scale it changes the text. */
  OK(pl_generate(model, NULL, store, "story", 0.0f, "Once upon a time", &p, NULL, NULL, &text));
  CHECK(strcmp(text, base_text) == 0);
  pl_free_string(text);
  OK(pl_generate(model, NULL, store, "story", 40.0f, "Once upon a time", &p, NULL, NULL, &text));
  CHECK(strcmp(text, base_text) != 0);
  pl_free_string(text);
  FAILS(pl_generate(model, NULL, store, "nosuch", 1.0f, "Hi", &p, NULL, NULL, NULL), PL_ERR_INVALID_INPUT, "nosuch");
  FAILS(pl_generate(model, NULL, store, "story", NAN, "Hi", &p, NULL, NULL, NULL), PL_ERR_INVALID_INPUT, "not finite");

  OK(pl_adapter_store_set_enabled(store, "story", 0));
  FAILS(pl_generate(model, NULL, store, "story", 1.0f, "Hi", &p, NULL, NULL, NULL), PL_ERR_INVALID_INPUT, "disabled");
  OK(pl_adapter_store_set_enabled(store, "story", 1));
  FAILS(pl_adapter_store_set_enabled(store, "nosuch", 1), PL_ERR_INVALID_INPUT, "nosuch");

  path_in(g_work, "exported", exported, sizeof exported);
  OK(pl_adapter_store_export(store, "story", exported));
  char orig[1200];
  CHECK(same_file(path_in(exported, "adapter_model.safetensors", f, sizeof f),
                  path_in(run_dir, "adapter_model.safetensors", orig, sizeof orig)));
  CHECK(exists(path_in(exported, "adapter_config.json", f, sizeof f)));
  FAILS(pl_adapter_store_export(store, "nosuch", exported), PL_ERR_INVALID_INPUT, "nosuch");
  FAILS(pl_adapter_store_export(store, "story", NULL), PL_ERR_INVALID_INPUT, "out_dir is NULL");

  OK(pl_adapter_store_delete(store, "story"));
  FAILS(pl_adapter_store_delete(store, "story"), PL_ERR_INVALID_INPUT, "story");
  FAILS(pl_generate(model, NULL, store, "story", 1.0f, "Hi", &p, NULL, NULL, NULL), PL_ERR_INVALID_INPUT, "story");
  OK(pl_adapter_store_list(store, &list));
  CHECK(strstr(list, "\"adapters\":[]") != NULL);
  pl_free_string(list);
  FAILS(pl_adapter_store_list(store, NULL), PL_ERR_INVALID_INPUT, "json_out");
  OK(pl_adapter_store_close(store));
  FAILS(pl_adapter_store_list(store, &list), PL_ERR_INVALID_HANDLE, "pl_adapter_store");
  FAILS(pl_adapter_store_close(store), PL_ERR_INVALID_HANDLE, "pl_adapter_store");
}

/* ---- Vulkan, when a device exists ------------------------------------------------------------------------ */
static void test_vulkan(const char* model_path, const char* cpu_text) {
  pl_runtime* rt = NULL;
  pl_status st = pl_runtime_open(PL_BACKEND_VULKAN, -1, &rt);
  if (st == PL_ERR_NO_DEVICE) {
    printf("vulkan: skipped (%s)\n", pl_last_error());
    return;
  }
  OK(st);
  char* desc = NULL;
  OK(pl_runtime_describe(rt, &desc));
  printf("vulkan: %s\n", desc);
  pl_free_string(desc);
  pl_backend b;
  OK(pl_runtime_backend(rt, &b));
  CHECK(b == PL_BACKEND_VULKAN);
  pl_model* model = NULL;
  OK(pl_model_load(rt, model_path, NULL, NULL, &model));
  pl_generate_params p;
  pl_generate_params_init(&p);
  p.max_tokens = 24;
  char* text = NULL;
  OK(pl_generate(model, NULL, NULL, NULL, 1.0f, "Once upon a time", &p, NULL, NULL, &text));
  CHECK(strcmp(text, cpu_text) == 0); /* greedy on stories260K: the same tokens as the CPU backend */
  pl_free_string(text);
  OK(pl_model_free(model));
  OK(pl_runtime_close(rt));
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SHARED_DATA_DIR WORK_DIR\n", argv[0]);
    return 2;
  }
  snprintf(g_data, sizeof g_data, "%s", argv[1]);
  snprintf(g_work, sizeof g_work, "%s", argv[2]);
  char cmd[2200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_work, g_work);
  if (system(cmd) != 0) return 2;
  char model_path[1200];
  path_in(g_data, "models/stories260K/stories260K.bin", model_path, sizeof model_path);
  if (!exists(model_path)) {
    fprintf(stderr, "%s is missing (../shared/data): cannot run\n", model_path);
    return 1;
  }

  CHECK(pl_version() == PL_API_VERSION);
  CHECK(strcmp(pl_status_name(PL_ERR_IO), "io") == 0 && strcmp(pl_status_name(PL_OK), "ok") == 0);
  CHECK(strcmp(pl_status_name(PL_ERR_INVALID_HANDLE), "invalid_handle") == 0);
  CHECK(strcmp(pl_status_name((pl_status)99), "unknown") == 0);
  pl_free_string(NULL);

  /* Runtime errors. */
  pl_runtime* rt = NULL;
  FAILS(pl_runtime_open((pl_backend)7, -1, &rt), PL_ERR_INVALID_INPUT, "backend 7");
  FAILS(pl_runtime_open(PL_BACKEND_CPU, 0, &rt), PL_ERR_INVALID_INPUT, "CPU backend");
  FAILS(pl_runtime_open(PL_BACKEND_CPU, -2, &rt), PL_ERR_INVALID_INPUT, "device_index");
  FAILS(pl_runtime_open(PL_BACKEND_CPU, -1, NULL), PL_ERR_INVALID_INPUT, "out is NULL");
  FAILS(pl_runtime_close(NULL), PL_ERR_INVALID_HANDLE, "NULL");
  pl_model* no_model = NULL;
  FAILS(pl_model_load(NULL, model_path, NULL, NULL, &no_model), PL_ERR_INVALID_HANDLE, "pl_runtime");

  OK(pl_runtime_open(PL_BACKEND_CPU, -1, &rt));
  pl_backend b;
  OK(pl_runtime_backend(rt, &b));
  CHECK(b == PL_BACKEND_CPU);

  /* Model errors, then the model. */
  pl_model* model = NULL;
  char missing[1200];
  path_in(g_work, "missing-model.bin", missing, sizeof missing);
  FAILS(pl_model_load(rt, missing, NULL, NULL, &model), PL_ERR_IO, "missing-model.bin");
  FAILS(pl_model_load(rt, model_path, NULL, "q3", &model), PL_ERR_INVALID_INPUT, "q3");
  FAILS(pl_model_load(rt, NULL, NULL, NULL, &model), PL_ERR_INVALID_INPUT, "model_path is NULL");
  char tokjunk[1200];
  path_in(g_data, "datasets/tinystories_sample.txt", tokjunk, sizeof tokjunk);
  CHECK(pl_model_load(rt, model_path, tokjunk, NULL, &model) != PL_OK); /* not a tokenizer */
  CHECK(model == NULL);
  OK(pl_model_load(rt, model_path, NULL, NULL, &model));
  char* info = NULL;
  OK(pl_model_info(model, &info));
  CHECK(strstr(info, "\"vocab_size\":512") && strstr(info, "\"n_layers\":5"));
  pl_free_string(info);
  FAILS(pl_model_free((pl_model*)rt), PL_ERR_INVALID_HANDLE, "pl_model");
  FAILS(pl_runtime_close((pl_runtime*)model), PL_ERR_INVALID_HANDLE, "pl_runtime");

  /* The base model's greedy text, the yardstick of the generation tests. */
  pl_generate_params p;
  pl_generate_params_init(&p);
  p.max_tokens = 24;
  char* base_text = NULL;
  OK(pl_generate(model, NULL, NULL, NULL, 1.0f, "Once upon a time", &p, NULL, NULL, &base_text));
  printf("base: %s\n", base_text);
  CHECK(strlen(base_text) > 20);

  test_generation(model, base_text);
  test_config_errors(model);
  char run_dir[1024];
  test_pause_resume_exact(model, run_dir, sizeof run_dir);
  test_cancel_and_states(model);
  test_policy(model);
  test_adapters(model, run_dir, base_text);
  test_vulkan(model_path, base_text);

  /* A job keeps what it needs of its model and runtime: both may go first. */
  char cfg[4096], out[1024];
  path_in(g_work, "run-orphan", out, sizeof out);
  job_config(cfg, sizeof cfg, out, 1, "");
  pl_train_job* job = NULL;
  OK(pl_train_job_create(model, cfg, NULL, NULL, &job));
  OK(pl_model_free(model));
  OK(pl_runtime_close(rt));
  OK(pl_train_job_start(job));
  pl_job_state s;
  OK(pl_train_job_wait(job, &s));
  CHECK(s == PL_JOB_FINISHED);
  OK(pl_train_job_destroy(job));

  FAILS(pl_model_free(model), PL_ERR_INVALID_HANDLE, "pl_model");
  FAILS(pl_runtime_close(rt), PL_ERR_INVALID_HANDLE, "pl_runtime");
  FAILS(pl_generate(model, NULL, NULL, NULL, 1.0f, "Hi", NULL, NULL, NULL, NULL), PL_ERR_INVALID_HANDLE, "pl_model");
  pl_free_string(base_text);

  if (g_failures) {
    fprintf(stderr, "capi lifecycle: %d check(s) failed\n", g_failures);
    return 1;
  }
  printf("capi lifecycle: ok\n");
  return 0;
}
