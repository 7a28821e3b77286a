// Per-file messages of the hashing step, in Turkish and English. Keys are the error codes the
// worker reports (HashError.code), so the page never shows a raw exception.

export const MESSAGES = {
  en: {
    empty: "This file is empty (0 bytes), so there is nothing to fingerprint. Choose the photo again from your gallery.",
    not_image: "This file is not a photo or a video that can be read here. Choose a photo (JPEG, PNG, WebP, GIF) or a video.",
    damaged: "This photo could not be opened: the file seems damaged or incomplete. If it opens on your device, take a screenshot of it and add the screenshot instead.",
    unsupported_format: "This browser cannot open this photo format (for example HEIC). Take a screenshot of the photo and add that, or save it as JPEG.",
    too_small: "This image is too small ({width}×{height} pixels) to fingerprint.",
    too_large: "This image is too large ({megapixels} megapixels; the limit is 100) to open here. Take a screenshot of it and add that instead.",
    read_failed: "The file could not be read (it may have been moved or deleted). Choose it again.",
    internal: "Something went wrong while fingerprinting this file. Please try again.",
  },
  tr: {
    empty: "Bu dosya boş (0 bayt); parmak izi çıkarılacak bir şey yok. Fotoğrafı galeriden yeniden seçin.",
    not_image: "Bu dosya burada okunabilen bir fotoğraf ya da video değil. Bir fotoğraf (JPEG, PNG, WebP, GIF) ya da video seçin.",
    damaged: "Bu fotoğraf açılamadı: dosya bozuk ya da eksik görünüyor. Cihazınızda açılıyorsa ekran görüntüsünü alıp onu ekleyin.",
    unsupported_format: "Bu tarayıcı bu fotoğraf biçimini (örneğin HEIC) açamıyor. Fotoğrafın ekran görüntüsünü alıp onu ekleyin ya da JPEG olarak kaydedin.",
    too_small: "Bu görüntü parmak izi çıkarmak için çok küçük ({width}×{height} piksel).",
    too_large: "Bu görüntü burada açmak için çok büyük ({megapixels} megapiksel; sınır 100). Ekran görüntüsünü alıp onu ekleyin.",
    read_failed: "Dosya okunamadı (taşınmış ya da silinmiş olabilir). Yeniden seçin.",
    internal: "Bu dosyanın parmak izi çıkarılırken bir sorun oldu. Lütfen yeniden deneyin.",
  },
};

export function message(code, language = "en", values = {}) {
  const table = MESSAGES[language] ?? MESSAGES.en;
  const text = table[code] ?? table.internal;
  return text.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}
