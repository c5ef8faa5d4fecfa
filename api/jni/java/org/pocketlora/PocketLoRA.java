package org.pocketlora;

import java.nio.charset.StandardCharsets;

/**
 * The PocketLoRA C API (api/pocketlora.h) for Java and Kotlin: open a runtime, load a model, train a LoRA adapter
 * in the background with progress callbacks, generate text streamed piece by piece, manage the adapter store.
 *
 * <p>Handles are the C API's opaque pointers as {@code long}s; each is released by exactly one close/free/destroy
 * call (a released handle is refused with {@link Error}, status "invalid_handle", not a crash). Every failure is
 * an {@link Error} carrying the C status and the library's message. Text crosses the boundary as UTF-8 bytes, so
 * any Unicode (emoji included) round-trips. Threads: see docs/C_API.md; a job's listener runs on the job's worker
 * thread (attached to the JVM for the job's lifetime), a generation's listener on the calling thread.
 */
public final class PocketLoRA {
  static {
    System.loadLibrary("pocketlora_jni");
  }

  private PocketLoRA() {}

  /** A failed call: the pl_status number, its name ("io", "invalid_input", ...) and the library's message. */
  public static final class Error extends RuntimeException {
    private static final long serialVersionUID = 1L;
    public final int status;
    public final String statusName;

    Error(int status, String statusName, byte[] message) {
      super(statusName + ": " + new String(message, StandardCharsets.UTF_8));
      this.status = status;
      this.statusName = statusName;
    }
  }

  /** Job states (pl_job_state). */
  public static final int JOB_CREATED = 0, JOB_RUNNING = 1, JOB_PAUSED = 2, JOB_WAITING = 3, JOB_FINISHED = 4,
      JOB_CANCELLED = 5, JOB_FAILED = 6;

  /** Called after every optimizer step and at every state change, on the job's worker thread. */
  public interface ProgressListener {
    void onProgress(long step, long totalSteps, double loss, double tokensPerSecond, int state,
                    double temperatureC, String message);
  }

  /** Called with each piece of generated text (whole characters), on the thread that called generate. */
  public interface TokenListener {
    void onPiece(String piece);
  }

  // ---- runtime and model ----
  /** backend: "auto", "cpu" or "vulkan"; deviceIndex -1 for the default device. */
  public static long openRuntime(String backend, int deviceIndex) {
    return nOpenRuntime(utf8(backend), deviceIndex);
  }

  public static String describeRuntime(long runtime) {
    return text(nDescribeRuntime(runtime));
  }

  public static native void closeRuntime(long runtime);

  /** tokenizerPath may be null (the model's own or the one beside it); quant "none" or "nf4" (null: none). */
  public static long loadModel(long runtime, String modelPath, String tokenizerPath, String quant) {
    return nLoadModel(runtime, utf8(modelPath), utf8(tokenizerPath), utf8(quant));
  }

  public static native void freeModel(long model);

  // ---- training ----
  /** configJson: the options of `pocketlora train` ({"data", "out", "steps", ...}; docs/C_API.md). */
  public static long createTrainJob(long model, String configJson, ProgressListener listener) {
    return nCreateTrainJob(model, utf8(configJson), listener);
  }

  public static native void startJob(long job);

  public static native void pauseJob(long job);

  public static native void resumeJob(long job);

  public static native void cancelJob(long job);

  /** Blocks until the job ends; returns JOB_FINISHED or JOB_CANCELLED, throws the error of a failed job. */
  public static native int waitJob(long job);

  public static native int jobState(long job);

  /** The ended job's summary as JSON (steps, losses, adapter_dir, checkpoint, ...). */
  public static String jobResult(long job) {
    return text(nJobResult(job));
  }

  /** Pushes the phone's readings to the job's device policy (NaN / -1 for unknown; override 0 none, 1 pause, 2 train). */
  public static native void pushSensors(long job, double batteryPercent, int charging, double batteryTempC,
                                        int screenOn, int userOverride);

  public static native void destroyJob(long job);

  // ---- adapters ----
  /** root: the store directory, or null for $POCKETLORA_HOME/adapters. */
  public static long openAdapterStore(String root) {
    return nOpenAdapterStore(utf8(root));
  }

  public static native void closeAdapterStore(long store);

  /** {"store", "adapters": [manifest, ...], "problems": [...]}. */
  public static String listAdapters(long store) {
    return text(nListAdapters(store));
  }

  /** Imports a finished job's "out" directory under name, checked against the model it was trained on. */
  public static void addAdapter(long store, long model, String srcDir, String name) {
    nAddAdapter(store, model, utf8(srcDir), utf8(name));
  }

  public static void setAdapterEnabled(long store, String name, boolean enabled) {
    nSetAdapterEnabled(store, utf8(name), enabled);
  }

  public static void exportAdapter(long store, String name, String outDir) {
    nExportAdapter(store, utf8(name), utf8(outDir));
  }

  public static void deleteAdapter(long store, String name) {
    nDeleteAdapter(store, utf8(name));
  }

  // ---- generation ----
  /** A cancellation token: pass it to generate and call cancelGeneration from another thread. */
  public static native long createGeneration();

  public static native void cancelGeneration(long generation);

  public static native void destroyGeneration(long generation);

  /**
   * Generates from prompt, streaming pieces to listener (may be null); returns the whole text. adapter null: the
   * base model (store may then be 0). generation 0: not cancellable. A cancelled generation throws Error
   * "cancelled".
   */
  public static String generate(long model, long generation, long store, String adapter, float scale, String prompt,
                                int maxTokens, float temperature, long seed, TokenListener listener) {
    return text(nGenerate(model, generation, store, utf8(adapter), scale, utf8(prompt), maxTokens, temperature, seed,
                          listener));
  }

  public static native int apiVersion();

  // ---- the native side: strings as UTF-8 bytes ----
  private static byte[] utf8(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  private static String text(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }

  // Called by the bridge (it decodes the C strings here, where Java's UTF-8 decoder is).
  private static void dispatchProgress(ProgressListener l, long step, long total, double loss, double tokensPerSecond,
                                       int state, double temperatureC, byte[] message) {
    l.onProgress(step, total, loss, tokensPerSecond, state, temperatureC, text(message));
  }

  private static void dispatchPiece(TokenListener l, byte[] piece) {
    l.onPiece(text(piece));
  }

  private static native long nOpenRuntime(byte[] backend, int deviceIndex);
  private static native byte[] nDescribeRuntime(long runtime);
  private static native long nLoadModel(long runtime, byte[] modelPath, byte[] tokenizerPath, byte[] quant);
  private static native long nCreateTrainJob(long model, byte[] configJson, ProgressListener listener);
  private static native byte[] nJobResult(long job);
  private static native long nOpenAdapterStore(byte[] root);
  private static native byte[] nListAdapters(long store);
  private static native void nAddAdapter(long store, long model, byte[] srcDir, byte[] name);
  private static native void nSetAdapterEnabled(long store, byte[] name, boolean enabled);
  private static native void nExportAdapter(long store, byte[] name, byte[] outDir);
  private static native void nDeleteAdapter(long store, byte[] name);
  private static native byte[] nGenerate(long model, long generation, long store, byte[] adapter, float scale,
                                         byte[] prompt, int maxTokens, float temperature, long seed,
                                         TokenListener listener);
}
