package org.pocketlora;

import java.io.File;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * How an app drives PocketLoRA, end to end; also the ctest jni_lifecycle (it exits non-zero on any failure).
 * Usage: Example SHARED_DATA_DIR WORK_DIR
 */
public final class Example {
  private Example() {}

  private static void check(boolean ok, String what) {
    if (!ok) throw new AssertionError(what);
  }

  private static void deleteTree(File f) {
    File[] children = f.listFiles();
    if (children != null) for (File c : children) deleteTree(c);
    if (f.exists() && !f.delete()) throw new AssertionError("cannot delete " + f);
  }

  public static void main(String[] args) throws Exception {
    check(args.length == 2, "usage: Example SHARED_DATA_DIR WORK_DIR");
    final String data = args[0];
    final File work = new File(args[1]);
    deleteTree(work);
    check(work.mkdirs(), "cannot create " + work);
    check(PocketLoRA.apiVersion() == 1, "the library's API version differs from this binding's");

    long rt = PocketLoRA.openRuntime("cpu", -1);
    System.out.println("runtime: " + PocketLoRA.describeRuntime(rt));
    long model = PocketLoRA.loadModel(rt, data + "/models/stories260K/stories260K.bin", null, null);

    // Generation, streamed through a Java listener.
    final StringBuilder streamed = new StringBuilder();
    String text = PocketLoRA.generate(model, 0, 0, null, 1.0f, "Once upon a time", 24, 0.0f, 0, streamed::append);
    System.out.println("generated: " + text);
    check(!text.isEmpty(), "no text generated");
    check(text.equals(streamed.toString()), "the streamed pieces differ from the returned text");

    // A short training job; progress arrives on the job's worker thread.
    final List<Long> steps = Collections.synchronizedList(new ArrayList<>());
    final List<Integer> states = Collections.synchronizedList(new ArrayList<>());
    String run = new File(work, "run").getPath();
    String config = "{\"data\": \"" + data + "/datasets/tinystories_sample.txt\", \"out\": \"" + run
        + "\", \"steps\": 2, \"batch\": 2, \"seq_len\": 32, \"rank\": 4, \"lr\": 1e-3}";
    long job = PocketLoRA.createTrainJob(model, config, (step, total, loss, tps, state, tempC, message) -> {
      states.add(state);
      if (state == PocketLoRA.JOB_RUNNING && step > 0 && !steps.contains(step)) {
        steps.add(step);
        System.out.printf("step %d/%d loss %.4f %.0f tok/s%n", step, total, loss, tps);
      }
    });
    PocketLoRA.startJob(job);
    check(PocketLoRA.waitJob(job) == PocketLoRA.JOB_FINISHED, "the job did not finish");
    check(steps.size() == 2 && steps.get(0) == 1 && steps.get(1) == 2, "expected progress for steps 1 and 2, got " + steps);
    check(states.get(states.size() - 1) == PocketLoRA.JOB_FINISHED, "the last report is not FINISHED: " + states);
    check(PocketLoRA.jobResult(job).contains("\"state\":\"finished\""), "result: " + PocketLoRA.jobResult(job));
    PocketLoRA.destroyJob(job);

    // The adapter store, then generation with the new adapter.
    long store = PocketLoRA.openAdapterStore(new File(work, "store").getPath());
    PocketLoRA.addAdapter(store, model, run, "jni-demo");
    check(PocketLoRA.listAdapters(store).contains("\"name\":\"jni-demo\""), "jni-demo not listed");
    String adapted = PocketLoRA.generate(model, 0, store, "jni-demo", 1.0f, "Once upon a time", 8, 0.0f, 0, null);
    check(!adapted.isEmpty(), "no text with the adapter");

    // Errors arrive as PocketLoRA.Error with the C status.
    try {
      PocketLoRA.loadModel(rt, "/nonexistent/model.bin", null, null);
      check(false, "loading a missing model did not throw");
    } catch (PocketLoRA.Error e) {
      check(e.statusName.equals("io") && e.getMessage().contains("/nonexistent/model.bin"), e.getMessage());
    }
    try {
      PocketLoRA.generate(model, 0, store, "no-such-adapter", 1.0f, "Hi", 4, 0.0f, 0, null);
      check(false, "an unknown adapter did not throw");
    } catch (PocketLoRA.Error e) {
      check(e.statusName.equals("invalid_input") && e.getMessage().contains("no-such-adapter"), e.getMessage());
    }

    PocketLoRA.closeAdapterStore(store);
    PocketLoRA.freeModel(model);
    PocketLoRA.closeRuntime(rt);
    try {
      PocketLoRA.closeRuntime(rt);
      check(false, "a double close did not throw");
    } catch (PocketLoRA.Error e) {
      check(e.statusName.equals("invalid_handle"), e.getMessage());
    }
    System.out.println("jni lifecycle: ok");
  }
}
