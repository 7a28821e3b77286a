// Per-file messages of the hashing step, in Turkish and English. Keys are the error codes the
// worker reports (HashError.code), so the page never shows a raw exception, and the codes of
// the notes a video gets when its frames cannot be read here (video_*: its MD5 still counts).

export const MESSAGES = {
  en: {
    empty: "This file is empty (0 bytes), so there is nothing to fingerprint. Choose the photo again from your gallery.",
    not_image: "This file is not a photo or a video that can be read here. Choose a photo (JPEG, PNG, WebP, GIF) or a video.",
    damaged: "This photo could not be opened: the file seems damaged or incomplete. If it opens on your device, take a screenshot of it and add the screenshot instead.",
    unsupported_format: "This browser cannot open this photo format (for example HEIC). Take a screenshot of the photo and add that, or save it as JPEG.",
    too_small: "This image is too small ({width}×{height} pixels) to fingerprint.",
    too_large: "This photo is too large ({megapixels} megapixels) to open safely on this device; the limit here is {limit} megapixels. Take a screenshot of it and add the screenshot instead.",
    cancelled: "Cancelled: this file was not fingerprinted and nothing about it is kept. Add it again if you change your mind.",
    read_failed: "The file could not be read (it may have been moved or deleted). Choose it again.",
    internal: "Something went wrong while fingerprinting this file. Please try again.",
    video_unsupported_browser: "This browser cannot read the frames of videos, so only this video's exact fingerprint (MD5) was made: a copy that was re-encoded or cut may not be recognised. For a fuller fingerprint, use an up-to-date Chrome, Edge, Firefox or Safari.",
    video_container_unsupported: "This video's frames could not be read here (its file type is not MP4 or MOV), so only its exact fingerprint (MD5) was made: a re-encoded copy may not be recognised. If you can, save or export a copy as MP4 and add that too.",
    video_codec_unsupported: "This browser cannot decode this video's format ({detail}), so only its exact fingerprint (MD5) was made: a re-encoded copy may not be recognised. If you can, save or export a copy as MP4 (H.264, \"most compatible\") and add that too.",
    video_damaged: "This video's frames could not be read (the file seems damaged or incomplete), so only its exact fingerprint (MD5) was made. If it plays on your device, save or export a copy and add that too.",
  },
  tr: {
    empty: "Bu dosya boş (0 bayt); parmak izi çıkarılacak bir şey yok. Fotoğrafı galeriden yeniden seçin.",
    not_image: "Bu dosya burada okunabilen bir fotoğraf ya da video değil. Bir fotoğraf (JPEG, PNG, WebP, GIF) ya da video seçin.",
    damaged: "Bu fotoğraf açılamadı: dosya bozuk ya da eksik görünüyor. Cihazınızda açılıyorsa ekran görüntüsünü alıp onu ekleyin.",
    unsupported_format: "Bu tarayıcı bu fotoğraf biçimini (örneğin HEIC) açamıyor. Fotoğrafın ekran görüntüsünü alıp onu ekleyin ya da JPEG olarak kaydedin.",
    too_small: "Bu görüntü parmak izi çıkarmak için çok küçük ({width}×{height} piksel).",
    too_large: "Bu fotoğraf bu cihazda güvenle açılamayacak kadar büyük ({megapixels} megapiksel); buradaki sınır {limit} megapiksel. Ekran görüntüsünü alıp onu ekleyin.",
    cancelled: "İptal edildi: bu dosyanın parmak izi çıkarılmadı ve onunla ilgili hiçbir şey saklanmadı. Fikrinizi değiştirirseniz yeniden ekleyin.",
    read_failed: "Dosya okunamadı (taşınmış ya da silinmiş olabilir). Yeniden seçin.",
    internal: "Bu dosyanın parmak izi çıkarılırken bir sorun oldu. Lütfen yeniden deneyin.",
    video_unsupported_browser: "Bu tarayıcı videoların karelerini okuyamıyor; bu yüzden bu video için yalnızca birebir parmak izi (MD5) çıkarıldı: yeniden kodlanmış ya da kırpılmış bir kopyası tanınmayabilir. Daha kapsamlı bir parmak izi için güncel bir Chrome, Edge, Firefox ya da Safari kullanın.",
    video_container_unsupported: "Bu videonun kareleri burada okunamadı (dosya türü MP4 ya da MOV değil); bu yüzden yalnızca birebir parmak izi (MD5) çıkarıldı: yeniden kodlanmış bir kopyası tanınmayabilir. Yapabiliyorsanız MP4 olarak bir kopyasını kaydedip onu da ekleyin.",
    video_codec_unsupported: "Bu tarayıcı bu videonun biçimini ({detail}) çözemiyor; bu yüzden yalnızca birebir parmak izi (MD5) çıkarıldı: yeniden kodlanmış bir kopyası tanınmayabilir. Yapabiliyorsanız MP4 (H.264, \"en uyumlu\") olarak bir kopyasını kaydedip onu da ekleyin.",
    video_damaged: "Bu videonun kareleri okunamadı (dosya bozuk ya da eksik görünüyor); bu yüzden yalnızca birebir parmak izi (MD5) çıkarıldı. Cihazınızda oynatılıyorsa bir kopyasını kaydedip onu da ekleyin.",
  },
};

export function message(code, language = "en", values = {}) {
  const table = MESSAGES[language] ?? MESSAGES.en;
  const text = table[code] ?? table.internal;
  return text.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}
