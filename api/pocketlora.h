/* PocketLoRA C API: on-device QLoRA fine-tuning and generation for apps (Android through JNI: api/jni/).
 *
 * Pure C11; no C++ type or exception crosses this boundary. docs/C_API.md has the lifecycle, a full example and
 * how an Android app links libpocketlora_c.so.
 *
 * ERRORS. Every function returns a pl_status: PL_OK, or the code of the library's error (host/core/error.h's
 * ErrorCode, same numbers), or one of the two API-level codes PL_ERR_INVALID_HANDLE / PL_ERR_BAD_STATE. The
 * message of the last failing call made on the calling thread is pl_last_error() (per thread, not per handle):
 * it names the file / field / adapter and what was expected, and stays valid until the next failing call on
 * that thread. A successful call does not clear it.
 *
 * HANDLES are opaque pointers created by a pl_*_open / _load / _create function and released by exactly one
 * matching pl_*_close / _free / _destroy. Every function checks its handle against the live handles of that
 * type: NULL, a released handle or a handle of another type is PL_ERR_INVALID_HANDLE (a double release is
 * detected unless the address has been reused by a newer handle since). A handle keeps alive what it needs of
 * the handles it was made from: a pl_model may be freed while a train job made from it runs, and a pl_runtime
 * while its models are in use.
 *
 * STRINGS. Strings passed in are read during the call only (copied when kept). A `char**` out-parameter receives
 * a NUL-terminated UTF-8 string the caller owns and frees with pl_free_string. A `const char*` given to a
 * callback is valid during that callback only.
 *
 * THREADS. Every function may be called from any thread. Calls on one pl_model (generation, loading adapters
 * into it) are serialised by a mutex per model; a pl_generation may be cancelled from any thread while another
 * thread generates with it; a train job's control functions (pause, resume, cancel, state, push_sensors) may be
 * called from any thread, the job's own progress callback included. Callbacks run on the thread doing the work:
 * a train job's progress callback on the job's worker thread, a generation's token callback on the thread that
 * called pl_generate. A callback must not destroy the handle it reports on.
 */
#ifndef POCKETLORA_H
#define POCKETLORA_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define PL_API __attribute__((visibility("default")))
#else
#define PL_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Every enum has a *_MAX_ENUM member of 0x7fffffff (as Vulkan's do): its values span int, so a C caller's
 * out-of-range value (refused as PL_ERR_INVALID_INPUT) is not undefined behaviour on the C++ side.
 *
 * The version of this header: bumped when a declaration changes. pl_version() is the library's; a program
 * checks both are equal before any other call. */
#define PL_API_VERSION 1

typedef enum pl_status {
  PL_OK = 0,
  PL_ERR_INVALID_INPUT = 1,  /* a value out of range or inconsistent: an option, a JSON config field, a name */
  PL_ERR_FORMAT = 2,         /* a file or JSON whose contents violate its format */
  PL_ERR_IO = 3,             /* a missing file, a permission, a full disk */
  PL_ERR_SHAPE = 4,          /* tensor shapes that do not fit the model (an adapter for another model) */
  PL_ERR_NUMERIC = 5,        /* NaN/Inf in the loss or gradients, step after step */
  PL_ERR_DEVICE_LIMIT = 6,   /* the work exceeds a limit of this GPU */
  PL_ERR_DEVICE_LOST = 7,    /* the GPU was lost; the job's state on it is gone (its checkpoint is not) */
  PL_ERR_OUT_OF_MEMORY = 8,  /* device or host memory exhausted, or the plan does not fit "max_memory" */
  PL_ERR_NO_DEVICE = 9,      /* no usable Vulkan device */
  PL_ERR_BACKEND = 10,       /* any other GPU API failure */
  PL_ERR_CANCELLED = 11,     /* the caller cancelled (a generation) */
  PL_ERR_INTERNAL = 12,      /* a bug in the library */
  PL_ERR_INVALID_HANDLE = 13, /* API only: a NULL, released or wrong-type handle (a NULL string or out-pointer
                                 argument is PL_ERR_INVALID_INPUT naming it) */
  PL_ERR_BAD_STATE = 14,      /* API only: a call the object's state does not allow (start a running job) */
  PL_STATUS_MAX_ENUM = 0x7fffffff /* not a status: makes every int a valid value of the type (see below) */
} pl_status;

/* The library's PL_API_VERSION. */
PL_API int pl_version(void);
/* "invalid_input", "io", ... for a status ("ok" for PL_OK, "unknown" otherwise); a static string. */
PL_API const char* pl_status_name(pl_status status);
/* The message of the last failing call on this thread ("" when none); owned by the library, see ERRORS. */
PL_API const char* pl_last_error(void);
/* Frees a string the library returned through a char** out-parameter; NULL is ignored. */
PL_API void pl_free_string(char* s);

/* ---- runtime: the compute backend ---------------------------------------------------------------------- */
typedef struct pl_runtime pl_runtime;
typedef enum pl_backend {
  PL_BACKEND_AUTO = 0,
  PL_BACKEND_CPU = 1,
  PL_BACKEND_VULKAN = 2,
  PL_BACKEND_MAX_ENUM = 0x7fffffff
} pl_backend;

/* Opens the backend once to check it works (AUTO: a Vulkan device when one is usable, else the CPU).
 * device_index: a Vulkan device (`pocketlora devices`), -1 for the default pick. PL_ERR_NO_DEVICE when VULKAN is
 * asked for and none is usable. Each model made from the runtime holds its own instance of the backend. */
PL_API pl_status pl_runtime_open(pl_backend backend, int device_index, pl_runtime** out);
/* The backend in one line (device name or CPU library); the caller frees it. */
PL_API pl_status pl_runtime_describe(pl_runtime* rt, char** out);
/* PL_BACKEND_CPU or PL_BACKEND_VULKAN (AUTO resolved). */
PL_API pl_status pl_runtime_backend(pl_runtime* rt, pl_backend* out);
PL_API pl_status pl_runtime_close(pl_runtime* rt);

/* ---- model ------------------------------------------------------------------------------------------------ */
typedef struct pl_model pl_model;

/* Loads a Llama-family model (llama2.c .bin, GGUF, HF safetensors file or folder, bnb-4bit) for generation and
 * as the base of train jobs. tokenizer_path: NULL to use the GGUF's own or the one beside the model. quant: the
 * base linears for generation, "none" (f32, also for NULL) or "nf4" (a train job's "quant" is in its config). */
PL_API pl_status pl_model_load(pl_runtime* rt, const char* model_path, const char* tokenizer_path, const char* quant,
                               pl_model** out);
/* {"path", "dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "max_seq_len", "backend"}; caller frees. */
PL_API pl_status pl_model_info(pl_model* model, char** json_out);
PL_API pl_status pl_model_free(pl_model* model);

/* ---- training job ----------------------------------------------------------------------------------------- */
typedef struct pl_train_job pl_train_job;

typedef enum pl_job_state {
  PL_JOB_CREATED = 0,   /* made, not started */
  PL_JOB_RUNNING = 1,   /* training (or loading before the first step) */
  PL_JOB_PAUSED = 2,    /* paused by pl_train_job_pause: checkpoint written, device memory released */
  PL_JOB_WAITING = 3,   /* held by the device policy (not charging, too hot, user override): likewise released */
  PL_JOB_FINISHED = 4,  /* every step done */
  PL_JOB_CANCELLED = 5, /* stopped by pl_train_job_cancel (after a checkpoint when a step had run) */
  PL_JOB_FAILED = 6,    /* stopped by an error: pl_train_job_wait returns it */
  PL_JOB_STATE_MAX_ENUM = 0x7fffffff
} pl_job_state;

/* What the progress callback receives: after every optimizer step and at every state change. */
typedef struct pl_train_progress {
  int64_t step;          /* optimizer steps done */
  int64_t total_steps;
  double loss;           /* the last step's training loss; NaN before the first step or for a skipped step */
  double val_loss;       /* the validation loss measured at this step; NaN when none was */
  double learning_rate;  /* the last step's */
  double tokens_per_s;   /* the last step's throughput; 0 before the first step */
  double temperature_c;  /* the hottest pushed temperature the policy would act on; NaN when unknown */
  pl_job_state state;
  /* The policy state and reason, or the error message when FAILED ("" otherwise); valid during the call. */
  const char* message;
} pl_train_progress;

/* Runs on the job's worker thread; may call the job's control functions, must not destroy it. */
typedef void (*pl_train_callback)(const pl_train_progress* progress, void* user_data);

/* Creates a job from the model and a JSON config: the options of `pocketlora train` with '_' for '-', e.g.
 * {"data": "train.jsonl", "out": "/data/run1", "steps": 200, "rank": 8, "lr": 2e-4, "seq_len": 256}
 * ("data" and "out" required; "policy": true or a policy object puts the job under the device policy, fed by
 * pl_train_job_push_sensors; docs/C_API.md lists every field). Everything is checked and loaded here (config,
 * data, model, a checkpoint to resume): a bad config is PL_ERR_INVALID_INPUT / PL_ERR_FORMAT naming the field, a
 * missing file PL_ERR_IO naming it. callback may be NULL; user_data is passed to it untouched. */
PL_API pl_status pl_train_job_create(pl_model* model, const char* config_json, pl_train_callback callback,
                                     void* user_data, pl_train_job** out);
/* Starts training on a worker thread the job owns; returns at once. PL_ERR_BAD_STATE unless CREATED. */
PL_API pl_status pl_train_job_start(pl_train_job* job);
/* Asks the job to pause at the next optimizer step boundary (state PAUSED once the checkpoint is written and the
 * memory released). A pause asked before start is taken before the first step. PL_ERR_BAD_STATE once ended. */
PL_API pl_status pl_train_job_pause(pl_train_job* job);
/* Lifts a pause: the job rebuilds its state from the pause's checkpoint and continues exactly where it stopped. */
PL_API pl_status pl_train_job_resume(pl_train_job* job);
/* Stops the job at the next step boundary, after a checkpoint (resume later with "resume": out). A job not yet
 * started is CANCELLED at once; cancelling an ended job does nothing. */
PL_API pl_status pl_train_job_cancel(pl_train_job* job);
/* Blocks until the job's worker ends (not started: PL_ERR_BAD_STATE). Returns PL_OK for FINISHED or CANCELLED,
 * else the error that ended it (its message in pl_last_error()). final_state may be NULL. */
PL_API pl_status pl_train_job_wait(pl_train_job* job, pl_job_state* final_state);
PL_API pl_status pl_train_job_state(pl_train_job* job, pl_job_state* out);
/* After the job ended: {"state", "steps", "total_steps", "first_loss", "last_loss", "first_val_loss",
 * "last_val_loss", "tokens_per_s", "seconds", "adapter_dir", "checkpoint", "error"} (unknown numbers null). */
PL_API pl_status pl_train_job_result(pl_train_job* job, char** json_out);
/* Cancels the job if running and waits for its worker, then releases it. PL_ERR_BAD_STATE from its callback. */
PL_API pl_status pl_train_job_destroy(pl_train_job* job);

/* ---- device policy sensors (docs/POLICY.md) ---------------------------------------------------------------- */
typedef enum pl_user_override {
  PL_OVERRIDE_NONE = 0,
  PL_OVERRIDE_PAUSE = 1,
  PL_OVERRIDE_TRAIN = 2,
  PL_OVERRIDE_MAX_ENUM = 0x7fffffff
} pl_user_override;
typedef enum pl_tristate { PL_UNKNOWN = -1, PL_FALSE = 0, PL_TRUE = 1, PL_TRISTATE_MAX_ENUM = 0x7fffffff } pl_tristate;

typedef struct pl_thermal_zone {
  const char* name;      /* the zone's type as the OS names it ("skin", "gpu-thermal") */
  double temperature_c;  /* NaN: unknown */
} pl_thermal_zone;

/* One moment's readings; NaN / PL_UNKNOWN for what the app cannot read (unknown readings never allow training). */
typedef struct pl_sensor_readings {
  double battery_percent;  /* 0..100 */
  pl_tristate charging;
  double battery_temp_c;
  pl_tristate screen_on;
  pl_user_override user_override; /* PAUSE: stop now; TRAIN: lift the charging/battery rules (not temperature) */
  const pl_thermal_zone* zones;   /* zone_count entries, or NULL when zone_count is 0 */
  size_t zone_count;
} pl_sensor_readings;

/* Sets every field to unknown / none. */
PL_API void pl_sensor_readings_init(pl_sensor_readings* r);
/* Replaces the job's readings (copied). Its policy, if it has one, acts on them before the next step; the
 * progress callback's temperature_c is computed from them either way. */
PL_API pl_status pl_train_job_push_sensors(pl_train_job* job, const pl_sensor_readings* readings);

/* ---- adapter store (docs/ADAPTER_STORE.md) ------------------------------------------------------------------ */
typedef struct pl_adapter_store pl_adapter_store;

/* root: the store's directory (created on the first write), or NULL for $POCKETLORA_HOME/adapters. */
PL_API pl_status pl_adapter_store_open(const char* root, pl_adapter_store** out);
PL_API pl_status pl_adapter_store_close(pl_adapter_store* store);
/* {"store": root, "adapters": [manifest, ...], "problems": [{"path", "error"}]}; the caller frees it. */
PL_API pl_status pl_adapter_store_list(pl_adapter_store* store, char** json_out);
/* Imports a trained run's "out" directory (or any PEFT adapter directory) under `name`, checked against the model
 * it was trained on; force != 0 accepts a run whose checkpoint names another base. */
PL_API pl_status pl_adapter_store_add(pl_adapter_store* store, pl_model* model, const char* src_dir, const char* name,
                                      int force);
PL_API pl_status pl_adapter_store_set_enabled(pl_adapter_store* store, const char* name, int enabled);
/* Copies the adapter's PEFT pair (adapter_model.safetensors + adapter_config.json, verified) into out_dir. */
PL_API pl_status pl_adapter_store_export(pl_adapter_store* store, const char* name, const char* out_dir);
PL_API pl_status pl_adapter_store_delete(pl_adapter_store* store, const char* name);

/* ---- generation ------------------------------------------------------------------------------------------- */
typedef struct pl_generation pl_generation;

typedef struct pl_generate_params {
  int32_t max_tokens;  /* most tokens generated (the end token included) */
  float temperature;   /* 0: greedy */
  int32_t top_k;       /* 0: off */
  float top_p;         /* 1: off */
  uint64_t seed;       /* sampling seed: the same seed gives the same text */
} pl_generate_params;

/* max_tokens 128, greedy, no top-k/top-p, seed 0. */
PL_API void pl_generate_params_init(pl_generate_params* p);

/* One piece of generated text: whole UTF-8 characters, `length` bytes, NUL-terminated; valid during the call. */
typedef void (*pl_token_callback)(const char* piece, size_t length, void* user_data);

/* A cancellation token for one generation at a time; cancel is sticky (make a new one per generation). */
PL_API pl_status pl_generation_create(pl_generation** out);
/* Stops the generation using this handle at its next token (it returns PL_ERR_CANCELLED); any thread. */
PL_API pl_status pl_generation_cancel(pl_generation* gen);
PL_API pl_status pl_generation_destroy(pl_generation* gen);

/* Generates from `prompt` (BOS added) until the end token or max_tokens, calling on_piece with each piece of text
 * as it is decoded. adapter: NULL for the base model, else the name of an enabled adapter in `store` trained on
 * this model's file (loaded into the model on first use), applied at `scale` times its own alpha/r. gen: NULL, or
 * a handle another thread may cancel through. text_out: NULL, or receives the whole text (caller frees; also on
 * PL_ERR_CANCELLED, with what was generated). on_piece may be NULL. */
PL_API pl_status pl_generate(pl_model* model, pl_generation* gen, pl_adapter_store* store, const char* adapter,
                             float scale, const char* prompt, const pl_generate_params* params,
                             pl_token_callback on_piece, void* user_data, char** text_out);

#ifdef __cplusplus
}
#endif

#endif /* POCKETLORA_H */
