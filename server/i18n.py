"""Turkish and English text for the server's pages. Every string a person reads is here."""

from __future__ import annotations

LANGUAGES = ("tr", "en")
DEFAULT_LANGUAGE = "tr"

TEXT: dict[str, dict[str, str]] = {
    "site_name": {"tr": "Kalkan", "en": "Kalkan"},
    "quick_exit": {"tr": "Hızlı çıkış", "en": "Quick exit"},
    "other_language": {"tr": "English", "en": "Türkçe"},
    "landing_title": {"tr": "Mahrem görüntülerinizin paylaşılmasını durdurun",
                      "en": "Stop your intimate images being shared"},
    "landing_lead": {
        "tr": "Fotoğraflarınızın ve videolarınızın parmak izi (hash) bu cihazda hesaplanır. "
              "Görüntüler cihazınızdan hiç çıkmaz ve kimse onları görmez; yalnızca parmak izleri gönderilir.",
        "en": "Your photos and videos are fingerprinted (hashed) on this device. The images never leave it "
              "and nobody sees them; only the fingerprints are sent.",
    },
    "landing_case_link": {"tr": "Mevcut bir başvuruyu görüntüleyin", "en": "Check an existing case"},
    "case_title": {"tr": "Başvurunuz", "en": "Your case"},
    "case_lookup_lead": {"tr": "Başvuru numaranızı ve PIN'inizi girin.",
                         "en": "Enter your case number and PIN."},
    "case_number": {"tr": "Başvuru numarası", "en": "Case number"},
    "pin": {"tr": "PIN", "en": "PIN"},
    "show_case": {"tr": "Başvuruyu göster", "en": "Show case"},
    "status": {"tr": "Durum", "en": "Status"},
    "status_active": {"tr": "Etkin: platformlar bu parmak izlerini arıyor",
                      "en": "Active: platforms are looking for these fingerprints"},
    "status_withdrawn": {"tr": "Geri çekildi", "en": "Withdrawn"},
    "created_at": {"tr": "Oluşturulma", "en": "Created"},
    "hashes": {"tr": "Parmak izleri", "en": "Fingerprints"},
    "outcomes": {"tr": "Platformlardan gelen sonuçlar", "en": "What platforms did"},
    "no_outcomes": {"tr": "Henüz bir platformdan sonuç gelmedi.", "en": "No platform has reported back yet."},
    "add_title": {"tr": "İçerik ekleyin", "en": "Add content"},
    "add_lead": {
        "tr": "Başka fotoğraf veya video eklemek için parmak izi sayfasını kullanın. "
              "Parmak izlerini zaten hesapladıysanız (ör. pyhash ile), her satıra bir tane yapıştırın: tür ve değer.",
        "en": "To add more photos or videos, use the fingerprinting page. If you already have fingerprints "
              "(e.g. from pyhash), paste one per line: type and value.",
    },
    "add_button": {"tr": "Ekle", "en": "Add"},
    "withdraw_title": {"tr": "Başvuruyu geri çekin", "en": "Withdraw the case"},
    "withdraw_lead": {
        "tr": "Geri çekerseniz platformlara bu parmak izlerini silmeleri söylenir. Bu geri alınamaz.",
        "en": "If you withdraw, platforms are told to delete these fingerprints. This cannot be undone.",
    },
    "withdraw_confirm": {"tr": "Geri çekmek istediğimi onaylıyorum", "en": "I confirm I want to withdraw"},
    "withdraw_button": {"tr": "Geri çek", "en": "Withdraw"},
    "withdrawn_done": {"tr": "Başvurunuz geri çekildi.", "en": "Your case is withdrawn."},
    "added_done": {"tr": "{added} yeni parmak izi eklendi.", "en": "{added} new fingerprints added."},
    "support": {"tr": "Destek: TKDF acil hattı 0212 656 96 96", "en": "Support: TKDF emergency line +90 212 656 96 96"},
    "error_title": {"tr": "Bir sorun oluştu", "en": "Something went wrong"},
    "not_found": {"tr": "Bu sayfa bulunamadı.", "en": "This page was not found."},
    "back_home": {"tr": "Ana sayfaya dön", "en": "Back to the start"},
    # API error codes, as a person should read them
    "err_case_or_pin_wrong": {
        "tr": "Bu başvuru numarası ve PIN ile bir başvuru bulunamadı. İkisini de kontrol edip tekrar deneyin.",
        "en": "No case matches this case number and PIN. Check both and try again.",
    },
    "err_locked": {
        "tr": "Bu başvuru numarası için çok fazla yanlış PIN girildi. Yaklaşık {minutes} dakika sonra tekrar deneyin.",
        "en": "Too many wrong PINs for this case number. Try again in about {minutes} minutes.",
    },
    "err_rate_limited": {"tr": "Çok fazla istek. Biraz bekleyip tekrar deneyin.",
                         "en": "Too many requests. Wait a moment and try again."},
    "err_case_withdrawn": {"tr": "Bu başvuru geri çekildi; yeni içerik için yeni bir başvuru başlatın.",
                           "en": "This case is withdrawn; start a new case to protect more images."},
    "err_low_quality": {
        "tr": "Bu görüntüde tanınması için yeterli ayrıntı yok. Daha net bir kopyasını deneyin.",
        "en": "This image has too little detail to be recognised. Try a clearer copy of it.",
    },
    "err_invalid_field": {"tr": "Girdiğiniz bilgiler geçersiz: {detail}", "en": "Something you entered is not valid: {detail}"},
    "err_case_full": {"tr": "Bu başvuru dolu; yeni bir başvuru başlatın.", "en": "This case is full; start a new case."},
    "err_other": {"tr": "İsteğiniz işlenemedi. Tekrar deneyin.", "en": "Your request could not be handled. Try again."},
}


def language_of(value: object) -> str:
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT_LANGUAGE


def text(key: str, language: str, **values: object) -> str:
    template = TEXT[key][language]
    return template.format(**values) if values else template
