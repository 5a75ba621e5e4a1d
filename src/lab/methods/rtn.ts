/**
 * Round-to-nearest: every selected linear layer is quantized on its own, per
 * (row, group), with the reference quantizer of src/core/quant/rtn.ts. No
 * calibration; quantization happens as each layer is loaded, so the model
 * never exists in f32 and packed form at once.
 */
import type { QuantScheme } from '../../core/quant/format';
import { quantizeRtn } from '../../core/quant/rtn';
import type { QuantMethod } from './method';

export interface RtnParams extends QuantScheme {
  /** quantize the output head too (default: kept in f32, as most papers report) */
  quantizeHead?: boolean;
  /** quantize the token embedding table too (default: kept in f32); a tied head shares it */
  quantizeEmbeddings?: boolean;
}

export const rtn: QuantMethod<RtnParams> = {
  id: 'rtn',
  label: 'RTN',
  async prepare({ params, read, onProgress, signal }) {
    let done = 0;
    return {
      read,
      quantize(name, weight, n, k) {
        signal?.throwIfAborted();
        if (name === 'head' && !params.quantizeHead) return null;
        if (name === 'embed.tokens' && !params.quantizeEmbeddings) return null;
        const packed = quantizeRtn(weight, n, k, params);
        onProgress?.({ stage: 'quantize', done: ++done, total: 0, item: name });
        return packed;
      },
      report: {},
    };
  },
};
