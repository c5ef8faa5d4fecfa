// The JNI bridge of org.pocketlora.PocketLoRA over the C API (api/pocketlora.h), and nothing else: an Android app's
// own bridge would look the same. Strings cross as UTF-8 byte arrays (Java encodes and decodes them), because
// JNI's "modified UTF-8" string functions mangle characters outside the BMP. Every failing pl_* call becomes a
// PocketLoRA.Error; a Java exception thrown by a listener is reported (job) or cancels the generation and
// propagates (generate).
#include <jni.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "api/pocketlora.h"

namespace {

JavaVM* g_vm = nullptr;
jclass g_binding = nullptr;  // org.pocketlora.PocketLoRA (global ref)
jclass g_error = nullptr;    // org.pocketlora.PocketLoRA$Error (global ref)
jmethodID g_error_ctor = nullptr, g_dispatch_progress = nullptr, g_dispatch_piece = nullptr;

// A job's listener (a global ref), deleted after the job's worker has ended (pl_train_job_destroy joins it).
std::mutex g_listeners_mu;
std::map<pl_train_job*, jobject> g_listeners;

template <typename T>
jlong to_jlong(T* p) {
  return static_cast<jlong>(reinterpret_cast<std::intptr_t>(p));
}
template <typename T>
T* from_jlong(jlong v) {
  return reinterpret_cast<T*>(static_cast<std::intptr_t>(v));
}

jbyteArray bytes(JNIEnv* env, const char* s, std::size_t n) {
  jbyteArray a = env->NewByteArray(static_cast<jsize>(n));
  if (a) env->SetByteArrayRegion(a, 0, static_cast<jsize>(n), reinterpret_cast<const jbyte*>(s));
  return a;
}

// Throws PocketLoRA.Error for a failed status (with this thread's pl_last_error); true when it did.
bool failed(JNIEnv* env, pl_status st) {
  if (st == PL_OK) return false;
  const std::string msg = pl_last_error();
  jstring name = env->NewStringUTF(pl_status_name(st));  // ASCII names
  jbyteArray m = bytes(env, msg.data(), msg.size());
  if (name && m) {
    auto e = static_cast<jthrowable>(env->NewObject(g_error, g_error_ctor, static_cast<jint>(st), name, m));
    if (e) env->Throw(e);
  }
  return true;
}

// A byte[] argument as a NUL-terminated string; null stays null (c_str() returns nullptr).
class Utf8Arg {
 public:
  Utf8Arg(JNIEnv* env, jbyteArray a) : null_(a == nullptr) {
    if (null_) return;
    const jsize n = env->GetArrayLength(a);
    s_.resize(static_cast<std::size_t>(n));
    env->GetByteArrayRegion(a, 0, n, reinterpret_cast<jbyte*>(s_.data()));
  }
  const char* c_str() const { return null_ ? nullptr : s_.c_str(); }

 private:
  bool null_;
  std::string s_;
};

// A native thread (a job's worker) attached to the JVM on its first callback and detached when it exits.
struct ThreadAttachment {
  bool attached = false;
  ~ThreadAttachment() {
    if (attached) g_vm->DetachCurrentThread();
  }
};

JNIEnv* env_of_this_thread() {
  JNIEnv* env = nullptr;
  if (g_vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_6) == JNI_OK) return env;
  thread_local ThreadAttachment attachment;
#ifdef __ANDROID__
  if (g_vm->AttachCurrentThread(&env, nullptr) != JNI_OK) return nullptr;
#else
  if (g_vm->AttachCurrentThread(reinterpret_cast<void**>(&env), nullptr) != JNI_OK) return nullptr;
#endif
  attachment.attached = true;
  return env;
}

void on_progress(const pl_train_progress* p, void* user_data) {
  JNIEnv* env = env_of_this_thread();
  if (!env) return;
  auto listener = static_cast<jobject>(user_data);
  const std::string msg = p->message ? p->message : "";
  jbyteArray m = bytes(env, msg.data(), msg.size());
  if (m)
    env->CallStaticVoidMethod(g_binding, g_dispatch_progress, listener, static_cast<jlong>(p->step),
                              static_cast<jlong>(p->total_steps), p->loss, p->tokens_per_s, static_cast<jint>(p->state),
                              p->temperature_c, m);
  if (env->ExceptionCheck()) {  // nowhere to throw it on the worker: report it, the job goes on
    env->ExceptionDescribe();
    env->ExceptionClear();
  }
  if (m) env->DeleteLocalRef(m);
}

struct GenerateContext {
  JNIEnv* env;
  jobject listener;
  pl_generation* gen;
};

void on_piece(const char* piece, std::size_t length, void* user_data) {
  auto* c = static_cast<GenerateContext*>(user_data);
  if (!c->listener || c->env->ExceptionCheck()) return;
  jbyteArray b = bytes(c->env, piece, length);
  if (b) c->env->CallStaticVoidMethod(g_binding, g_dispatch_piece, c->listener, b);
  if (c->env->ExceptionCheck()) {
    pl_generation_cancel(c->gen);  // the listener threw: stop, and let its exception propagate
    return;
  }
  c->env->DeleteLocalRef(b);
}

}  // namespace

extern "C" {

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void*) {
  g_vm = vm;
  JNIEnv* env = nullptr;
  if (vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_6) != JNI_OK) return JNI_ERR;
  jclass binding = env->FindClass("org/pocketlora/PocketLoRA");
  jclass error = env->FindClass("org/pocketlora/PocketLoRA$Error");
  if (!binding || !error) return JNI_ERR;
  g_binding = static_cast<jclass>(env->NewGlobalRef(binding));
  g_error = static_cast<jclass>(env->NewGlobalRef(error));
  g_error_ctor = env->GetMethodID(g_error, "<init>", "(ILjava/lang/String;[B)V");
  g_dispatch_progress = env->GetStaticMethodID(g_binding, "dispatchProgress",
                                               "(Lorg/pocketlora/PocketLoRA$ProgressListener;JJDDID[B)V");
  g_dispatch_piece = env->GetStaticMethodID(g_binding, "dispatchPiece", "(Lorg/pocketlora/PocketLoRA$TokenListener;[B)V");
  if (!g_error_ctor || !g_dispatch_progress || !g_dispatch_piece) return JNI_ERR;
  return JNI_VERSION_1_6;
}

JNIEXPORT jint JNICALL Java_org_pocketlora_PocketLoRA_apiVersion(JNIEnv*, jclass) { return pl_version(); }

JNIEXPORT jlong JNICALL Java_org_pocketlora_PocketLoRA_nOpenRuntime(JNIEnv* env, jclass, jbyteArray backend,
                                                                    jint device) {
  const Utf8Arg b(env, backend);
  const std::string name = b.c_str() ? b.c_str() : "auto";
  pl_backend kind = PL_BACKEND_AUTO;
  if (name == "cpu") kind = PL_BACKEND_CPU;
  else if (name == "vulkan") kind = PL_BACKEND_VULKAN;
  else if (name != "auto") kind = static_cast<pl_backend>(-1);  // refused by pl_runtime_open, with its message
  pl_runtime* rt = nullptr;
  if (failed(env, pl_runtime_open(kind, device, &rt))) return 0;
  return to_jlong(rt);
}

JNIEXPORT jbyteArray JNICALL Java_org_pocketlora_PocketLoRA_nDescribeRuntime(JNIEnv* env, jclass, jlong rt) {
  char* s = nullptr;
  if (failed(env, pl_runtime_describe(from_jlong<pl_runtime>(rt), &s))) return nullptr;
  jbyteArray out = bytes(env, s, std::strlen(s));
  pl_free_string(s);
  return out;
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_closeRuntime(JNIEnv* env, jclass, jlong rt) {
  failed(env, pl_runtime_close(from_jlong<pl_runtime>(rt)));
}

JNIEXPORT jlong JNICALL Java_org_pocketlora_PocketLoRA_nLoadModel(JNIEnv* env, jclass, jlong rt, jbyteArray path,
                                                                  jbyteArray tokenizer, jbyteArray quant) {
  const Utf8Arg p(env, path), t(env, tokenizer), q(env, quant);
  pl_model* m = nullptr;
  if (failed(env, pl_model_load(from_jlong<pl_runtime>(rt), p.c_str(), t.c_str(), q.c_str(), &m))) return 0;
  return to_jlong(m);
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_freeModel(JNIEnv* env, jclass, jlong model) {
  failed(env, pl_model_free(from_jlong<pl_model>(model)));
}

JNIEXPORT jlong JNICALL Java_org_pocketlora_PocketLoRA_nCreateTrainJob(JNIEnv* env, jclass, jlong model,
                                                                       jbyteArray config, jobject listener) {
  const Utf8Arg c(env, config);
  jobject ref = listener ? env->NewGlobalRef(listener) : nullptr;
  pl_train_job* job = nullptr;
  const pl_status st = pl_train_job_create(from_jlong<pl_model>(model), c.c_str(), ref ? on_progress : nullptr, ref, &job);
  if (failed(env, st)) {
    if (ref) env->DeleteGlobalRef(ref);
    return 0;
  }
  if (ref) {
    std::lock_guard lock(g_listeners_mu);
    g_listeners[job] = ref;
  }
  return to_jlong(job);
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_startJob(JNIEnv* env, jclass, jlong job) {
  failed(env, pl_train_job_start(from_jlong<pl_train_job>(job)));
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_pauseJob(JNIEnv* env, jclass, jlong job) {
  failed(env, pl_train_job_pause(from_jlong<pl_train_job>(job)));
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_resumeJob(JNIEnv* env, jclass, jlong job) {
  failed(env, pl_train_job_resume(from_jlong<pl_train_job>(job)));
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_cancelJob(JNIEnv* env, jclass, jlong job) {
  failed(env, pl_train_job_cancel(from_jlong<pl_train_job>(job)));
}

JNIEXPORT jint JNICALL Java_org_pocketlora_PocketLoRA_waitJob(JNIEnv* env, jclass, jlong job) {
  pl_job_state s = PL_JOB_FAILED;
  failed(env, pl_train_job_wait(from_jlong<pl_train_job>(job), &s));
  return static_cast<jint>(s);
}

JNIEXPORT jint JNICALL Java_org_pocketlora_PocketLoRA_jobState(JNIEnv* env, jclass, jlong job) {
  pl_job_state s = PL_JOB_FAILED;
  failed(env, pl_train_job_state(from_jlong<pl_train_job>(job), &s));
  return static_cast<jint>(s);
}

JNIEXPORT jbyteArray JNICALL Java_org_pocketlora_PocketLoRA_nJobResult(JNIEnv* env, jclass, jlong job) {
  char* s = nullptr;
  if (failed(env, pl_train_job_result(from_jlong<pl_train_job>(job), &s))) return nullptr;
  jbyteArray out = bytes(env, s, std::strlen(s));
  pl_free_string(s);
  return out;
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_pushSensors(JNIEnv* env, jclass, jlong job, jdouble battery,
                                                                  jint charging, jdouble temp, jint screen_on,
                                                                  jint user_override) {
  pl_sensor_readings r;
  pl_sensor_readings_init(&r);
  r.battery_percent = battery;
  r.charging = static_cast<pl_tristate>(charging);
  r.battery_temp_c = temp;
  r.screen_on = static_cast<pl_tristate>(screen_on);
  r.user_override = static_cast<pl_user_override>(user_override);
  failed(env, pl_train_job_push_sensors(from_jlong<pl_train_job>(job), &r));
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_destroyJob(JNIEnv* env, jclass, jlong job) {
  auto* j = from_jlong<pl_train_job>(job);
  if (failed(env, pl_train_job_destroy(j))) return;
  jobject ref = nullptr;  // the worker has ended: no callback can use the listener any more
  {
    std::lock_guard lock(g_listeners_mu);
    if (auto it = g_listeners.find(j); it != g_listeners.end()) {
      ref = it->second;
      g_listeners.erase(it);
    }
  }
  if (ref) env->DeleteGlobalRef(ref);
}

JNIEXPORT jlong JNICALL Java_org_pocketlora_PocketLoRA_nOpenAdapterStore(JNIEnv* env, jclass, jbyteArray root) {
  const Utf8Arg r(env, root);
  pl_adapter_store* s = nullptr;
  if (failed(env, pl_adapter_store_open(r.c_str(), &s))) return 0;
  return to_jlong(s);
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_closeAdapterStore(JNIEnv* env, jclass, jlong store) {
  failed(env, pl_adapter_store_close(from_jlong<pl_adapter_store>(store)));
}

JNIEXPORT jbyteArray JNICALL Java_org_pocketlora_PocketLoRA_nListAdapters(JNIEnv* env, jclass, jlong store) {
  char* s = nullptr;
  if (failed(env, pl_adapter_store_list(from_jlong<pl_adapter_store>(store), &s))) return nullptr;
  jbyteArray out = bytes(env, s, std::strlen(s));
  pl_free_string(s);
  return out;
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_nAddAdapter(JNIEnv* env, jclass, jlong store, jlong model,
                                                                  jbyteArray src, jbyteArray name) {
  const Utf8Arg s(env, src), n(env, name);
  failed(env, pl_adapter_store_add(from_jlong<pl_adapter_store>(store), from_jlong<pl_model>(model), s.c_str(),
                                   n.c_str(), 0));
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_nSetAdapterEnabled(JNIEnv* env, jclass, jlong store,
                                                                         jbyteArray name, jboolean enabled) {
  const Utf8Arg n(env, name);
  failed(env, pl_adapter_store_set_enabled(from_jlong<pl_adapter_store>(store), n.c_str(), enabled ? 1 : 0));
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_nExportAdapter(JNIEnv* env, jclass, jlong store, jbyteArray name,
                                                                     jbyteArray out) {
  const Utf8Arg n(env, name), o(env, out);
  failed(env, pl_adapter_store_export(from_jlong<pl_adapter_store>(store), n.c_str(), o.c_str()));
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_nDeleteAdapter(JNIEnv* env, jclass, jlong store,
                                                                     jbyteArray name) {
  const Utf8Arg n(env, name);
  failed(env, pl_adapter_store_delete(from_jlong<pl_adapter_store>(store), n.c_str()));
}

JNIEXPORT jlong JNICALL Java_org_pocketlora_PocketLoRA_createGeneration(JNIEnv* env, jclass) {
  pl_generation* g = nullptr;
  if (failed(env, pl_generation_create(&g))) return 0;
  return to_jlong(g);
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_cancelGeneration(JNIEnv* env, jclass, jlong gen) {
  failed(env, pl_generation_cancel(from_jlong<pl_generation>(gen)));
}

JNIEXPORT void JNICALL Java_org_pocketlora_PocketLoRA_destroyGeneration(JNIEnv* env, jclass, jlong gen) {
  failed(env, pl_generation_destroy(from_jlong<pl_generation>(gen)));
}

JNIEXPORT jbyteArray JNICALL Java_org_pocketlora_PocketLoRA_nGenerate(JNIEnv* env, jclass, jlong model, jlong gen,
                                                                      jlong store, jbyteArray adapter, jfloat scale,
                                                                      jbyteArray prompt, jint max_tokens,
                                                                      jfloat temperature, jlong seed,
                                                                      jobject listener) {
  const Utf8Arg a(env, adapter), p(env, prompt);
  // Without a caller's handle the bridge makes its own, so a throwing listener can still stop the generation.
  pl_generation* own = nullptr;
  pl_generation* g = from_jlong<pl_generation>(gen);
  if (!g) {
    if (failed(env, pl_generation_create(&own))) return nullptr;
    g = own;
  }
  pl_generate_params params;
  pl_generate_params_init(&params);
  params.max_tokens = max_tokens;
  params.temperature = temperature;
  params.seed = static_cast<std::uint64_t>(seed);
  GenerateContext ctx{env, listener, g};
  char* text = nullptr;
  const pl_status st = pl_generate(from_jlong<pl_model>(model), g, from_jlong<pl_adapter_store>(store), a.c_str(), scale,
                                   p.c_str(), &params, on_piece, &ctx, &text);
  if (own) pl_generation_destroy(own);
  jbyteArray out = nullptr;
  if (env->ExceptionCheck()) {  // the listener's exception wins over the cancellation it caused
    pl_free_string(text);
    return nullptr;
  }
  if (!failed(env, st)) out = bytes(env, text, std::strlen(text));
  pl_free_string(text);
  return out;
}

}  // extern "C"
