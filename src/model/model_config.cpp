#include "asr/model/model_config.h"

namespace asr {

using namespace config;

Fields model_config_fields(ModelConfig& m, const std::string& prefix) {
  const std::string fe = prefix + "frontend.", enc = prefix + "encoder.", vq = prefix + "rvq.";
  FrontendConfig& f = m.frontend;
  EncoderConfig& e = m.encoder;
  RvqConfig& r = m.rvq;
  return {
      {prefix + "sample_rate", &m.sample_rate, within(1000, 384000),
       "audio sample rate; the trainer takes it from the dataset"},
      {prefix + "vocab_size", &m.vocab_size, at_least(0),
       "CTC output size; 0 = from the tokenizer (the trainer always sets it from the tokenizer)"},

      {fe + "kind", &f.kind, one_of({"waveform", "logmel"}),
       "the seed's learned waveform frontend, or log-mel features with conv subsampling"},
      {fe + "pool", &f.pool, at_least(1), "waveform: average-pooling factor before the blocks"},
      {fe + "strides", &f.strides, at_least(1),
       "waveform: one residual downsampling block per stride; total downsampling is `pool * product(strides)`"},
      {fe + "kernel", &f.kernel, at_least(1), "waveform: kernel width of the strided convolutions"},
      {fe + "hidden", &f.hidden, at_least(0), "channels inside the blocks; 0 = `d_model / 2`"},
      {fe + "n_mels", &f.n_mels, at_least(1), "logmel: mel bands"},
      {fe + "n_fft", &f.n_fft, at_least(16), "logmel: FFT size in samples"},
      {fe + "hop", &f.hop, at_least(1), "logmel: hop in samples"},
      {fe + "subsample_strides", &f.subsample_strides, at_least(1),
       "logmel: strides of the subsampling convolutions"},
      {fe + "norm", &f.norm, one_of({"batch", "group", "layer"}),
       "normalization inside the frontend; all three ignore padding. `\"batch\"` statistics are synchronized "
       "over all ranks (the global batch)"},
      {fe + "norm_groups", &f.norm_groups, at_least(1), "groups for `\"group\"` norm"},
      {fe + "output_norm", &f.output_norm, any(),
       "layer norm over `d_model` on each output frame: the encoder input gets unit scale, above the positional "
       "encoding, whatever the convolutions' initialization"},

      {enc + "d_model", &e.d_model, at_least(1), "model width"},
      {enc + "layers", &e.layers, at_least(1), "transformer layers"},
      {enc + "heads", &e.heads, at_least(1), "attention heads; must divide `d_model`"},
      {enc + "ff_mult", &e.ff_mult, at_least(1), "feed-forward width as a multiple of `d_model`"},
      {enc + "dropout", &e.dropout, within(0, 1, true), "dropout on the residual and feed-forward paths"},
      {enc + "attention_dropout", &e.attention_dropout, within(0, 1, true),
       "dropout on attention weights (costs a random draw per score, so off by default)"},
      {enc + "pre_ln", &e.pre_ln, any(), "layer norm before (true) or after (false, the seed's) each sublayer"},
      {enc + "conv_kernel", &e.conv_kernel, within(0, 255),
       "width of a depthwise convolution module after each layer's attention (Conformer-style: pointwise + GLU, "
       "depthwise conv, layer norm, SiLU, pointwise); 0 = none, the seed's plain Transformer layer"},

      {vq + "enabled", &r.enabled, any(), "residual vector quantization between encoder and CTC head"},
      {vq + "codebooks", &r.codebooks, at_least(1), "number of residual codebooks"},
      {vq + "codes", &r.codes, at_least(2), "codes per codebook"},
      {vq + "commitment", &r.commitment, at_least(0), "commitment loss weight (the seed's)"},
      {vq + "ema", &r.ema, any(), "EMA codebook updates instead of the codebook loss"},
      {vq + "ema_decay", &r.ema_decay, within(0, 1, true), "EMA decay"},
      {vq + "kmeans_init", &r.kmeans_init, any(), "initialize the codebooks by k-means on the first batch"},
      {vq + "kmeans_iters", &r.kmeans_iters, at_least(1), "k-means iterations for that"},
      {vq + "dead_code_threshold", &r.dead_code_threshold, at_least(0),
       "a code used fewer times than this in a window is restarted"},
      {vq + "dead_code_window", &r.dead_code_window, at_least(1), "steps between dead-code checks"},
  };
}

std::vector<SectionDoc> model_config_sections(const std::string& prefix) {
  const std::string base = prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1);
  auto sub = [&](const std::string& name) { return base.empty() ? name : base + "." + name; };
  return {{base, ""}, {sub("frontend"), ""}, {sub("encoder"), ""}, {sub("rvq"), "residual vector quantizer"}};
}

void check_model_consistency(const ModelConfig& m, const FailFn& fail, const std::string& prefix) {
  if (m.encoder.d_model % m.encoder.heads != 0)
    fail(prefix + "encoder.heads", "must divide " + prefix + "encoder.d_model (" + std::to_string(m.encoder.d_model) +
                                       " is not a multiple of " + std::to_string(m.encoder.heads) + ")");
  if (m.frontend.kind == "waveform" && m.frontend.norm == "group") {
    const int hidden = m.frontend.hidden > 0 ? m.frontend.hidden : m.encoder.d_model / 2;
    if (hidden % m.frontend.norm_groups != 0)
      fail(prefix + "frontend.norm_groups", "must divide the frontend's " + std::to_string(hidden) + " channels");
  }
}

ModelConfig model_config_from_toml(const std::string& text, const std::string& source) {
  ModelConfig m;
  auto doc = Document::parse(text, source);
  doc.read(model_config_fields(m), "model");
  check_model_consistency(m, [&](const std::string& key, const std::string& problem) { doc.fail(key, problem); });
  return m;
}

std::string model_config_to_toml(const ModelConfig& m) {
  ModelConfig copy = m;
  return to_toml(model_config_fields(copy));
}

}  // namespace asr
